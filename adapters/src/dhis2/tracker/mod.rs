//! Tracker payloads → Patient, EpisodeOfCare, Encounter and Observation.
//!
//! Both APIs are read with the same code: the 2.36+ tracker
//! (`trackedEntities` / `instances`, `trackedEntity`, `enrolledAt`,
//! `occurredAt`) and the legacy one (`trackedEntityInstances`,
//! `trackedEntityInstance`, `enrollmentDate`, `eventDate`), nested
//! (tracked entity → enrollments → events) or flat (top-level `enrollments`
//! or `events` that name their tracked entity). Every resource id comes from
//! its DHIS2 uid, so references between them need nothing but the ids.

pub(crate) mod events;
pub(crate) mod patient;

use super::config::{Config, is_uid};
use super::fields;
use crate::output::{BundleBuilder, Mapped, RecordError};
use serde_json::{Value, json};

/// Names of the tracked entity uid field (new API, legacy API).
const TEI_UID: [&str; 2] = ["trackedEntity", "trackedEntityInstance"];

/// Maps a tracker payload: any of `trackedEntities`,
/// `trackedEntityInstances`, `enrollments`, `events` and `instances` (2.41+
/// paged exports, whose items are told apart by their uid field) at the top
/// level.
pub fn map_tracker(payload: &Value, cfg: &Config) -> Mapped {
    let mut out = BundleBuilder::default();
    let mut found = false;
    for name in [
        "trackedEntities",
        "trackedEntityInstances",
        "instances",
        "enrollments",
        "events",
    ] {
        let Some(items) = fields::array(payload, name) else {
            continue;
        };
        found = true;
        for (index, item) in items.iter().enumerate() {
            let at = format!("{name}[{index}]");
            let is_event = name == "events" || (name == "instances" && item.get("event").is_some());
            let is_enrollment = name == "enrollments"
                || (name == "instances" && !is_event && item.get("enrollment").is_some());
            if is_event {
                let owner = Owner {
                    patient: fields::text(item, &TEI_UID),
                    episode: fields::text(item, &["enrollment"]),
                };
                events::event(item, &at, &owner, cfg, &mut out);
            } else if is_enrollment {
                let tei = fields::text(item, &TEI_UID);
                enrollment(item, &at, tei.as_deref(), cfg, &mut out);
            } else {
                tracked_entity(item, &at, cfg, &mut out);
            }
            out.end_record();
        }
    }
    if !found {
        out.error(RecordError::error(
            None,
            "",
            "the payload has none of trackedEntities, trackedEntityInstances, instances, enrollments, events",
        ));
    }
    out.finish()
}

/// The tracked entity and enrollment an event belongs to (uids).
#[derive(Debug, Default)]
pub(crate) struct Owner {
    pub patient: Option<String>,
    pub episode: Option<String>,
}

/// A uid field that must be present and well formed.
pub(crate) fn required_uid(
    item: &Value,
    names: &[&str],
    at: &str,
    what: &str,
) -> Result<String, RecordError> {
    match fields::text(item, names) {
        Some(uid) if is_uid(&uid) => Ok(uid),
        Some(other) => Err(RecordError::error(
            Some(&other),
            &format!("{at}.{}", names[0]),
            format!("{other:?} is not a DHIS2 uid"),
        )),
        None => Err(RecordError::error(
            None,
            at,
            format!("{what} without `{}`", names.join("` or `")),
        )),
    }
}

/// Whether DHIS2 marks the record deleted. Such a record is not mapped (a
/// `PUT` would bring it back); carrying out the deletion is the sync's job.
/// Reported as a warning.
pub(crate) fn deleted(item: &Value, uid: &str, at: &str, out: &mut BundleBuilder) -> bool {
    let deleted = item.get("deleted").and_then(Value::as_bool) == Some(true);
    if deleted {
        out.error(RecordError::error(Some(uid), at, "deleted in DHIS2: not mapped").warning());
    }
    deleted
}

/// One tracked entity: its Patient, then each enrollment with its events.
fn tracked_entity(entity: &Value, at: &str, cfg: &Config, out: &mut BundleBuilder) {
    let uid = match required_uid(entity, &TEI_UID, at, "tracked entity") {
        Ok(uid) => uid,
        Err(error) => return out.error(error),
    };
    if deleted(entity, &uid, at, out) {
        return;
    }
    let enrollments = fields::array(entity, "enrollments").unwrap_or_default();
    let mut attributes: Vec<(String, &Value)> = fields::array(entity, "attributes")
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(index, attribute)| (format!("{at}.attributes[{index}]"), attribute))
        .collect();
    // Program attributes sent with the enrollment (2.36+) describe the same
    // person.
    for (e, item) in enrollments.iter().enumerate() {
        for (index, attribute) in fields::array(item, "attributes")
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            attributes.push((
                format!("{at}.enrollments[{e}].attributes[{index}]"),
                attribute,
            ));
        }
    }
    let patient = patient::patient(entity, &uid, &attributes, cfg, out);
    if !out.put(patient, Some(&uid), at) {
        return;
    }
    for (index, item) in enrollments.iter().enumerate() {
        enrollment(
            item,
            &format!("{at}.enrollments[{index}]"),
            Some(&uid),
            cfg,
            out,
        );
    }
}

/// One enrollment → EpisodeOfCare, then its events. An enrollment that
/// cannot be mapped leaves its events out too (they would point at it).
fn enrollment(item: &Value, at: &str, tei: Option<&str>, cfg: &Config, out: &mut BundleBuilder) {
    let uid = match required_uid(item, &["enrollment"], at, "enrollment") {
        Ok(uid) => uid,
        Err(error) => return out.error(error),
    };
    if deleted(item, &uid, at, out) {
        return;
    }
    let nested = fields::array(item, "events").unwrap_or_default();
    match episode_of_care(item, &uid, at, tei, cfg) {
        Ok(episode) => {
            if !out.put(episode, Some(&uid), at) {
                return;
            }
        }
        Err((path, message)) => {
            let left_out = if nested.is_empty() {
                String::new()
            } else {
                format!("; its {} event(s) are left out too", nested.len())
            };
            return out.error(RecordError::error(
                Some(&uid),
                &path,
                format!("{message}{left_out}"),
            ));
        }
    }
    let owner = Owner {
        patient: tei.map(str::to_owned),
        episode: Some(uid),
    };
    for (index, event) in nested.iter().enumerate() {
        events::event(event, &format!("{at}.events[{index}]"), &owner, cfg, out);
    }
}

/// The EpisodeOfCare of an enrollment, or the path and the reason why not.
fn episode_of_care(
    item: &Value,
    uid: &str,
    at: &str,
    tei: Option<&str>,
    cfg: &Config,
) -> Result<Value, (String, String)> {
    let tei = tei.filter(|tei| is_uid(tei)).ok_or_else(|| {
        (
            at.to_owned(),
            "enrollment without a valid `trackedEntity` / `trackedEntityInstance` \
             (EpisodeOfCare.patient is required)"
                .to_owned(),
        )
    })?;
    let status_text = fields::text(item, &["status"]).unwrap_or_default();
    let status = match status_text.as_str() {
        "ACTIVE" => "active",
        "COMPLETED" => "finished",
        "CANCELLED" => "cancelled",
        other => {
            return Err((
                format!("{at}.status"),
                format!("enrollment status {other:?} is not ACTIVE, COMPLETED or CANCELLED"),
            ));
        }
    };
    let offset = cfg.source.time_zone.as_str();
    let mut episode = json!({
        "resourceType": "EpisodeOfCare",
        "id": cfg.id(uid),
        "identifier": [{"system": cfg.source.system_base.join("enrollments"), "value": uid}],
        "status": status,
        "patient": {"reference": format!("Patient/{}", cfg.id(tei))},
    });
    if let Some(program) = fields::text(item, &["program"]) {
        if let Some(known) = cfg.tracker.programs.get(&program) {
            let mut concept = json!({"text": known.name.as_str()});
            if let Some(code) = &known.code {
                concept["coding"] = json!([code.to_json()]);
            }
            episode["type"] = json!([concept]);
        }
    }
    if let Some(org_unit) = fields::text(item, &["orgUnit"]).filter(|ou| is_uid(ou)) {
        episode["managingOrganization"] =
            json!({"reference": format!("Organization/{}", cfg.id(&org_unit))});
    }
    let mut period = serde_json::Map::new();
    for (key, names) in [
        ("start", ["enrolledAt", "enrollmentDate"]),
        ("end", ["completedAt", "completedDate"]),
    ] {
        // Only a finished or cancelled enrollment has an end.
        if key == "end" && status == "active" {
            continue;
        }
        let Some(name) = names
            .into_iter()
            .find(|name| fields::text(item, &[name]).is_some())
        else {
            continue;
        };
        let text = fields::text(item, &[name]).unwrap_or_default();
        let value = fields::date_time(&text, offset).map_err(|e| (format!("{at}.{name}"), e))?;
        period.insert(key.into(), json!(value));
    }
    if !period.is_empty() {
        episode["period"] = Value::Object(period);
    }
    Ok(episode)
}
