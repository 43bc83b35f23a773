//! One tracker event → an Encounter and an Observation per data value,
//! coded through the config's data elements. An unknown data element or a
//! value that does not fit its type leaves that Observation out with a
//! per-record error (or a warning, with `unknownDataElements: skip`).

use super::super::config::{Config, DataElement, Unknown, is_uid};
use super::super::fields;
use super::super::values::observation_value;
use super::{Owner, deleted, required_uid};
use crate::output::{BundleBuilder, RecordError};
use fhir::IssueCode;
use serde_json::{Value, json};

const ACT_CODES: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const CATEGORIES: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// Maps one event (nested or top-level) with its data values.
pub fn event(item: &Value, at: &str, owner: &Owner, cfg: &Config, out: &mut BundleBuilder) {
    let uid = match required_uid(item, &["event"], at, "event") {
        Ok(uid) => uid,
        Err(error) => return out.error(error),
    };
    if deleted(item, &uid, at, out) {
        return;
    }
    let status_text = fields::text(item, &["status"]).unwrap_or_default();
    let (encounter_status, observation_status) = match status_text.as_str() {
        "ACTIVE" | "VISITED" => ("in-progress", "preliminary"),
        "COMPLETED" => ("finished", "final"),
        "SCHEDULE" | "OVERDUE" => ("planned", "registered"),
        "SKIPPED" => ("cancelled", "cancelled"),
        other => {
            return out.error(RecordError::error(
                Some(&uid),
                &format!("{at}.status"),
                format!(
                    "event status {other:?} is not ACTIVE, COMPLETED, VISITED, SCHEDULE, OVERDUE or SKIPPED; \
                     the event is left out"
                ),
            ));
        }
    };
    let offset = cfg.source.time_zone.as_str();
    let occurred = match fields::text(item, &["occurredAt", "eventDate"])
        .map(|t| fields::date_time(&t, offset))
    {
        Some(Err(message)) => {
            return out.error(RecordError::error(
                Some(&uid),
                &format!("{at}.occurredAt"),
                format!("{message}; the event is left out"),
            ));
        }
        Some(Ok(occurred)) => Some(occurred),
        None => None,
    };
    let encounter_id = cfg.id(&uid);
    let patient = owner
        .patient
        .as_deref()
        .filter(|p| is_uid(p))
        .map(|p| format!("Patient/{}", cfg.id(p)));
    let org_unit = fields::text(item, &["orgUnit"])
        .filter(|ou| is_uid(ou))
        .map(|ou| format!("Organization/{}", cfg.id(&ou)));

    let mut encounter = json!({
        "resourceType": "Encounter",
        "id": encounter_id,
        "identifier": [{"system": cfg.source.system_base.join("events"), "value": uid}],
        "status": encounter_status,
        "class": cfg.tracker.encounter_class.as_ref().map_or_else(
            || json!({"system": ACT_CODES, "code": "AMB", "display": "ambulatory"}),
            |coding| coding.to_json(),
        ),
    });
    if let Some(stage) = stage_name(item, cfg) {
        encounter["type"] = json!([{"text": stage}]);
    }
    if let Some(patient) = &patient {
        encounter["subject"] = json!({"reference": patient});
    }
    if let Some(episode) = owner.episode.as_deref().filter(|e| is_uid(e)) {
        encounter["episodeOfCare"] =
            json!([{"reference": format!("EpisodeOfCare/{}", cfg.id(episode))}]);
    }
    if let Some(occurred) = &occurred {
        encounter["period"] = json!({"start": occurred});
    }
    if let Some(org_unit) = &org_unit {
        encounter["serviceProvider"] = json!({"reference": org_unit});
    }
    if !out.put(encounter, Some(&uid), at) {
        return;
    }

    let context = ObservationContext {
        event: &uid,
        encounter: format!("Encounter/{encounter_id}"),
        status: observation_status,
        patient,
        performer: org_unit,
        effective: occurred,
    };
    for (index, data_value) in fields::array(item, "dataValues")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let path = format!("{at}.dataValues[{index}]");
        match observation(data_value, &path, &context, cfg) {
            Ok(Some(resource)) => {
                out.put(resource, Some(&uid), &path);
            }
            Ok(None) => {}
            Err(error) => out.error(error),
        }
    }
}

/// The stage name from the config, for Encounter.type.
fn stage_name(item: &Value, cfg: &Config) -> Option<String> {
    let program = fields::text(item, &["program"])?;
    let stage = fields::text(item, &["programStage"])?;
    let program = cfg.tracker.programs.get(&program)?;
    program
        .stages
        .get(&stage)
        .map(|name| name.as_str().to_owned())
}

/// What every Observation of one event shares.
struct ObservationContext<'a> {
    event: &'a str,
    encounter: String,
    status: &'static str,
    patient: Option<String>,
    performer: Option<String>,
    effective: Option<String>,
}

/// The Observation of one data value; `Ok(None)` for an empty value.
fn observation(
    data_value: &Value,
    at: &str,
    context: &ObservationContext<'_>,
    cfg: &Config,
) -> Result<Option<Value>, RecordError> {
    let event = Some(context.event);
    let element_uid = fields::text(data_value, &["dataElement"])
        .ok_or_else(|| RecordError::error(event, at, "data value without `dataElement`"))?;
    let Some(raw) = data_value.get("value").and_then(fields::scalar) else {
        return Ok(None);
    };
    let element = known_element(
        &element_uid,
        at,
        event,
        cfg.tracker.unknown_data_elements,
        cfg,
    )?;
    let (value_key, value) = observation_value(element, &raw, cfg.source.time_zone.as_str())
        .map_err(|message| {
            RecordError::error(
                event,
                &format!("{at}.value"),
                format!("data element {element_uid}: {message}"),
            )
            .with_code(IssueCode::Value)
        })?;
    let mut observation = json!({
        "resourceType": "Observation",
        "id": format!("{}-{element_uid}", cfg.id(context.event)),
        "status": context.status,
        "code": code(element),
        "encounter": {"reference": context.encounter},
    });
    if let Some(category) = &element.category {
        observation["category"] = json!([{"coding": [{"system": CATEGORIES, "code": category}]}]);
    }
    if let Some(patient) = &context.patient {
        observation["subject"] = json!({"reference": patient});
    }
    if let Some(effective) = &context.effective {
        observation["effectiveDateTime"] = json!(effective);
    }
    if let Some(performer) = &context.performer {
        observation["performer"] = json!([{"reference": performer}]);
    }
    observation[value_key] = value;
    Ok(Some(observation))
}

/// The configured data element, or the error (or warning) the policy asks for.
pub(crate) fn known_element<'c>(
    element_uid: &str,
    at: &str,
    record: Option<&str>,
    policy: Unknown,
    cfg: &'c Config,
) -> Result<&'c DataElement, RecordError> {
    cfg.data_elements.get(element_uid).ok_or_else(|| {
        let error = RecordError::error(
            record,
            &format!("{at}.dataElement"),
            format!("unknown data element {element_uid}: not in the mapping config; the value is left out"),
        )
        .with_code(IssueCode::CodeInvalid);
        match policy {
            Unknown::Error => error,
            Unknown::Skip => error.warning(),
        }
    })
}

/// Observation.code: the configured coding, with the data element's name as text.
pub(crate) fn code(element: &DataElement) -> Value {
    let mut code = element.code.concept();
    if let Some(name) = &element.name {
        code["text"] = json!(name.as_str());
    }
    code
}
