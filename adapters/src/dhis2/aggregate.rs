//! Data value sets → MeasureReport (or Observation, per data element).
//!
//! One MeasureReport per data set, org unit, period and attribute option
//! combo (`type` summary unless configured, `status` complete): a `group`
//! per data element coded through the config, whose `measureScore` is the
//! value for the default category option combo, and whose single
//! `stratifier` holds one `stratum` per other category option combo. Data
//! elements configured with `aggregate: observation` become one Observation
//! per value instead, on the org unit's Location.

use super::config::{Config, DataElement, is_uid};
use super::fields;
use super::period::{PeriodRange, parse_period};
use super::tracker::events::{code, known_element};
use super::values::{decimal, observation_value, quantity};
use crate::output::{BundleBuilder, Mapped, RecordError, composite_id};
use fhir::IssueCode;
use serde_json::{Value, json};
use std::collections::HashMap;

/// DHIS2's built-in "default" category option combo.
pub const DEFAULT_COMBO: &str = "HllvX50cXC0";

/// Maps `{"dataSet": ..., "dataValues": [...]}` or `{"dataValueSets": [...]}`.
pub fn map_data_value_sets(payload: &Value, cfg: &Config) -> Mapped {
    let mut out = BundleBuilder::default();
    match fields::array(payload, "dataValueSets") {
        Some(sets) => {
            for (index, set) in sets.iter().enumerate() {
                data_value_set(set, &format!("dataValueSets[{index}]."), cfg, &mut out);
            }
        }
        None if payload.get("dataValues").is_some() => data_value_set(payload, "", cfg, &mut out),
        None => out.error(RecordError::error(
            None,
            "",
            "the payload has neither dataValues nor dataValueSets",
        )),
    }
    out.finish()
}

/// The fields a data value inherits from its set.
struct SetDefaults {
    data_set: Option<String>,
    complete_date: Option<String>,
    period: Option<Result<(String, PeriodRange), ()>>,
    org_unit: Option<String>,
    attribute_combo: Option<String>,
}

/// The set's `completeDate` as a FHIR dateTime; a bad one is left out with a
/// warning (reported once for the set).
fn complete_date(
    set: &Value,
    prefix: &str,
    cfg: &Config,
    out: &mut BundleBuilder,
) -> Option<String> {
    let text = fields::text(set, &["completeDate", "completedDate"])?;
    match fields::date_time(&text, cfg.source.time_zone.as_str()) {
        Ok(date) => Some(date),
        Err(message) => {
            let record = fields::text(set, &["dataSet"]);
            out.error(
                RecordError::error(
                    record.as_deref(),
                    &format!("{prefix}completeDate"),
                    format!("{message}; left out"),
                )
                .warning(),
            );
            None
        }
    }
}

/// One MeasureReport being filled: key fields and its groups in order.
struct Report {
    data_set: Option<String>,
    org_unit: String,
    period: (String, PeriodRange),
    attribute_combo: String,
    groups: Vec<(String, Value)>,
}

fn data_value_set(set: &Value, prefix: &str, cfg: &Config, out: &mut BundleBuilder) {
    let data_set = fields::text(set, &["dataSet"]);
    let period = fields::text(set, &["period"]).map(|period| match parse_period(&period) {
        Ok(range) => Ok((period, range)),
        Err(error) => {
            out.error(
                RecordError::error(
                    data_set.as_deref(),
                    &format!("{prefix}period"),
                    format!("bad period: {error}"),
                )
                .with_code(IssueCode::Value),
            );
            Err(())
        }
    });
    let defaults = SetDefaults {
        complete_date: complete_date(set, prefix, cfg, out),
        period,
        org_unit: fields::text(set, &["orgUnit"]),
        attribute_combo: fields::text(set, &["attributeOptionCombo"]),
        data_set,
    };
    let mut reports: Vec<Report> = Vec::new();
    let mut by_key: HashMap<(String, String, String), usize> = HashMap::new();
    for (index, data_value) in fields::array(set, "dataValues")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let at = format!("{prefix}dataValues[{index}]");
        if let Err(error) = one_value(
            data_value,
            &at,
            &defaults,
            cfg,
            out,
            &mut reports,
            &mut by_key,
        ) {
            out.error(error);
        }
    }
    for report in reports {
        let resource = measure_report(report, &defaults, cfg);
        let at = format!("{prefix}dataValues");
        out.put(resource, defaults.data_set.as_deref(), &at);
        out.end_record();
    }
}

/// Files one data value into its report, or maps it to an Observation.
fn one_value(
    data_value: &Value,
    at: &str,
    defaults: &SetDefaults,
    cfg: &Config,
    out: &mut BundleBuilder,
    reports: &mut Vec<Report>,
    by_key: &mut HashMap<(String, String, String), usize>,
) -> Result<(), RecordError> {
    let element_uid = fields::text(data_value, &["dataElement"])
        .ok_or_else(|| RecordError::error(None, at, "data value without `dataElement`"))?;
    let record = Some(element_uid.as_str());
    if data_value.get("deleted").and_then(Value::as_bool) == Some(true) {
        return Err(RecordError::error(record, at, "deleted in DHIS2: not mapped").warning());
    }
    let period = match fields::text(data_value, &["period"]) {
        Some(period) => match parse_period(&period) {
            Ok(range) => (period, range),
            Err(error) => {
                return Err(RecordError::error(
                    record,
                    &format!("{at}.period"),
                    format!("bad period: {error}"),
                )
                .with_code(IssueCode::Value));
            }
        },
        None => match &defaults.period {
            Some(Ok(period)) => period.clone(),
            // The set's own period was bad: reported once already.
            Some(Err(())) => return Ok(()),
            None => {
                return Err(RecordError::error(
                    record,
                    at,
                    "data value without a period (nor one on its set)",
                ));
            }
        },
    };
    let org_unit = fields::text(data_value, &["orgUnit"])
        .or_else(|| defaults.org_unit.clone())
        .filter(|ou| is_uid(ou))
        .ok_or_else(|| {
            RecordError::error(
                record,
                &format!("{at}.orgUnit"),
                "data value without a valid orgUnit",
            )
        })?;
    let combo =
        fields::text(data_value, &["categoryOptionCombo"]).unwrap_or_else(|| DEFAULT_COMBO.into());
    let attribute_combo = fields::text(data_value, &["attributeOptionCombo"])
        .or_else(|| defaults.attribute_combo.clone())
        .unwrap_or_else(|| DEFAULT_COMBO.into());
    let Some(raw) = data_value.get("value").and_then(fields::scalar) else {
        return Ok(());
    };
    let element = known_element(
        &element_uid,
        at,
        record,
        cfg.aggregate.unknown_data_elements,
        cfg,
    )?;
    let keys = Keys {
        element_uid: &element_uid,
        org_unit: &org_unit,
        combo: &combo,
        attribute_combo: &attribute_combo,
        period: &period,
    };
    if element.aggregate == super::config::AggregateAs::Observation {
        let observation = aggregate_observation(data_value, at, element, &raw, &keys, cfg)?;
        out.put(observation, Some(&element_uid), at);
        out.end_record();
        return Ok(());
    }
    let number = decimal(&raw).map_err(|message| {
        RecordError::error(
            record,
            &format!("{at}.value"),
            format!("{message}: a MeasureReport score must be numeric (configure `aggregate: observation`)"),
        )
        .with_code(IssueCode::Value)
    })?;
    let key = (org_unit.clone(), period.0.clone(), attribute_combo.clone());
    let position = *by_key.entry(key).or_insert_with(|| {
        reports.push(Report {
            data_set: defaults.data_set.clone(),
            org_unit: org_unit.clone(),
            period: period.clone(),
            attribute_combo: attribute_combo.clone(),
            groups: Vec::new(),
        });
        reports.len() - 1
    });
    let groups = &mut reports[position].groups;
    let group = match groups.iter().position(|(uid, _)| *uid == element_uid) {
        Some(found) => &mut groups[found].1,
        None => {
            let last = groups.len();
            groups.push((element_uid.clone(), json!({"code": code(element)})));
            &mut groups[last].1
        }
    };
    add_score(group, element, number, &combo, cfg)
        .map_err(|message| RecordError::error(record, at, message))
}

/// The DHIS2 coordinates of one data value.
struct Keys<'a> {
    element_uid: &'a str,
    org_unit: &'a str,
    combo: &'a str,
    attribute_combo: &'a str,
    period: &'a (String, PeriodRange),
}

/// Puts the value on the group (default combo) or in a stratum.
fn add_score(
    group: &mut Value,
    element: &DataElement,
    number: serde_json::Number,
    combo: &str,
    cfg: &Config,
) -> Result<(), String> {
    let score = quantity(element, number);
    if combo == DEFAULT_COMBO {
        if group.get("measureScore").is_some() {
            return Err(
                "the same data element, org unit, period and combos are given twice; left out"
                    .into(),
            );
        }
        group["measureScore"] = score;
        return Ok(());
    }
    let coding = match cfg.aggregate.category_option_combos.get(combo) {
        Some(coding) => coding.to_json(),
        None => {
            json!({"system": cfg.source.system_base.join("categoryOptionCombos"), "code": combo})
        }
    };
    if group.get("stratifier").is_none() {
        group["stratifier"] =
            json!([{"code": [{"text": "DHIS2 category option combo"}], "stratum": []}]);
    }
    let strata = group["stratifier"][0]["stratum"]
        .as_array_mut()
        .ok_or("internal: stratum is not an array")?;
    if strata
        .iter()
        .any(|s| s["value"]["coding"][0]["code"] == coding["code"])
    {
        return Err(format!(
            "category option combo {combo} is given twice for this data element; left out"
        ));
    }
    strata.push(json!({"value": {"coding": [coding]}, "measureScore": score}));
    Ok(())
}

fn measure_report(report: Report, defaults: &SetDefaults, cfg: &Config) -> Value {
    let data_set = report.data_set.as_deref().unwrap_or("");
    let (period_text, range) = &report.period;
    let org_unit_id = cfg.id(&report.org_unit);
    let prefix = format!("{}mr-", cfg.source.id_prefix.as_str());
    let keys = [
        data_set,
        &report.org_unit,
        period_text,
        &report.attribute_combo,
    ];
    let mut resource = json!({
        "resourceType": "MeasureReport",
        "id": composite_id(&prefix, &keys),
        "identifier": [{"system": cfg.source.system_base.join("dataValueSets"), "value": keys.join("/")}],
        "status": "complete",
        "type": cfg.aggregate.report_type.as_str(),
        "measure": if data_set.is_empty() {
            cfg.source.system_base.join("dataSets")
        } else {
            cfg.source.system_base.join(&format!("dataSets/{data_set}"))
        },
        "subject": {"reference": format!("Location/{org_unit_id}")},
        "reporter": {"reference": format!("Organization/{org_unit_id}")},
        "period": range.to_fhir(),
        "group": report.groups.into_iter().map(|(_, group)| group).collect::<Vec<_>>(),
    });
    if let Some(date) = &defaults.complete_date {
        resource["date"] = json!(date);
    }
    resource
}

/// A data value of an element configured as `aggregate: observation`.
fn aggregate_observation(
    data_value: &Value,
    at: &str,
    element: &DataElement,
    raw: &str,
    keys: &Keys<'_>,
    cfg: &Config,
) -> Result<Value, RecordError> {
    let (value_key, value) = observation_value(element, raw, cfg.source.time_zone.as_str())
        .map_err(|message| {
            RecordError::error(Some(keys.element_uid), &format!("{at}.value"), message)
                .with_code(IssueCode::Value)
        })?;
    let (period_text, range) = keys.period;
    let key_list = [
        keys.element_uid,
        period_text.as_str(),
        keys.org_unit,
        keys.combo,
        keys.attribute_combo,
    ];
    let org_unit_id = cfg.id(keys.org_unit);
    let prefix = format!("{}dv-", cfg.source.id_prefix.as_str());
    let mut observation = json!({
        "resourceType": "Observation",
        "id": composite_id(&prefix, &key_list),
        "identifier": [{"system": cfg.source.system_base.join("dataValues"), "value": key_list.join("/")}],
        "status": "final",
        "code": code(element),
        "subject": {"reference": format!("Location/{org_unit_id}")},
        "effectivePeriod": range.to_fhir(),
        "performer": [{"reference": format!("Organization/{org_unit_id}")}],
    });
    if let Some(category) = &element.category {
        observation["category"] = json!([{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": category,
        }]}]);
    }
    observation[value_key] = value;
    if let Some(comment) = fields::text(data_value, &["comment"]) {
        let mut note = json!({"text": comment});
        if let Some(author) = fields::text(data_value, &["storedBy"]) {
            note["authorString"] = json!(author);
        }
        observation["note"] = json!([note]);
    }
    Ok(observation)
}
