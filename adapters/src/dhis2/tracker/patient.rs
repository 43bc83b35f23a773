//! Tracked entity attributes → Patient, one configured element per
//! attribute. A value that cannot be mapped is left out with a per-record
//! error at its attribute; the rest of the Patient is kept.

use super::super::config::{Attribute, Config, PatientElement, Unknown};
use super::super::fields;
use crate::output::{BundleBuilder, RecordError};
use serde_json::{Map, Value, json};

/// The Patient of tracked entity `uid` from `attributes` (path, attribute).
pub fn patient(
    entity: &Value,
    uid: &str,
    attributes: &[(String, &Value)],
    cfg: &Config,
    out: &mut BundleBuilder,
) -> Value {
    let mut builder = PatientBuilder::new(json!({
        "resourceType": "Patient",
        "id": cfg.id(uid),
        "identifier": [{"system": cfg.source.system_base.join("trackedEntities"), "value": uid}],
    }));
    for (at, attribute) in attributes {
        let Some(attribute_uid) = fields::text(attribute, &["attribute"]) else {
            out.error(RecordError::error(
                Some(uid),
                at,
                "attribute without `attribute` uid",
            ));
            continue;
        };
        let Some(value) = attribute.get("value").and_then(fields::scalar) else {
            continue;
        };
        let Some(mapping) = cfg.tracker.attributes.get(&attribute_uid) else {
            if cfg.tracker.unknown_attributes == Unknown::Error {
                out.error(RecordError::error(
                    Some(uid),
                    at,
                    format!("attribute {attribute_uid} is not in the mapping config"),
                ));
            }
            continue;
        };
        if let Err(message) = builder.fill(mapping, &value) {
            out.error(RecordError::error(
                Some(uid),
                &format!("{at}.value"),
                format!("attribute {attribute_uid}: {message}; left out"),
            ));
        }
    }
    let mut patient = builder.finish();
    if let Some(org_unit) = fields::text(entity, &["orgUnit"]).filter(|ou| super::is_uid(ou)) {
        patient["managingOrganization"] =
            json!({"reference": format!("Organization/{}", cfg.id(&org_unit))});
    }
    if entity.get("inactive").and_then(Value::as_bool) == Some(true) {
        patient["active"] = json!(false);
    }
    patient
}

/// A Patient being filled one configured element at a time (DHIS2
/// attributes, CSV columns).
pub(crate) struct PatientBuilder {
    patient: Value,
    name: Map<String, Value>,
    address: Map<String, Value>,
    telecom: Vec<Value>,
}

impl PatientBuilder {
    /// Starts from `patient` (resourceType, id, identifiers).
    pub(crate) fn new(patient: Value) -> Self {
        PatientBuilder {
            patient,
            name: Map::new(),
            address: Map::new(),
            telecom: Vec::new(),
        }
    }

    /// The Patient with the one name, address and telecoms gathered.
    pub(crate) fn finish(mut self) -> Value {
        if !self.name.is_empty() {
            self.name.insert("use".into(), json!("official"));
            self.patient["name"] = json!([self.name]);
        }
        if !self.telecom.is_empty() {
            self.patient["telecom"] = json!(self.telecom);
        }
        if !self.address.is_empty() {
            self.address.insert("use".into(), json!("home"));
            self.patient["address"] = json!([self.address]);
        }
        self.patient
    }

    /// Puts one value where `mapping` says; an error says why it does not fit.
    pub(crate) fn fill(&mut self, mapping: &Attribute, raw: &str) -> Result<(), String> {
        let value = mapping.value_map.get(raw).map_or(raw, String::as_str);
        match mapping.element {
            PatientElement::Identifier => {
                let mut identifier = json!({"value": value});
                if let Some(system) = &mapping.system {
                    identifier["system"] = json!(system.as_str());
                }
                if let Some(text) = &mapping.type_text {
                    identifier["type"] = json!({"text": text.as_str()});
                }
                push(&mut self.patient, "identifier", identifier);
            }
            PatientElement::NameFamily => {
                self.name.insert("family".into(), json!(value));
            }
            PatientElement::NameGiven => push_map(&mut self.name, "given", json!(value)),
            PatientElement::NameText => {
                self.name.insert("text".into(), json!(value));
            }
            PatientElement::BirthDate => {
                self.patient["birthDate"] = json!(fields::date(value)?);
            }
            PatientElement::Gender => {
                let gender = value.to_ascii_lowercase();
                if !["male", "female", "other", "unknown"].contains(&gender.as_str()) {
                    return Err(format!(
                        "{raw:?} is not a gender the valueMap knows (nor male, female, other, unknown)"
                    ));
                }
                self.patient["gender"] = json!(gender);
            }
            PatientElement::Phone => self
                .telecom
                .push(json!({"system": "phone", "value": value})),
            PatientElement::Email => self
                .telecom
                .push(json!({"system": "email", "value": value})),
            PatientElement::AddressLine => push_map(&mut self.address, "line", json!(value)),
            PatientElement::AddressCity => set(&mut self.address, "city", value),
            PatientElement::AddressDistrict => set(&mut self.address, "district", value),
            PatientElement::AddressState => set(&mut self.address, "state", value),
            PatientElement::AddressPostalCode => set(&mut self.address, "postalCode", value),
            PatientElement::AddressCountry => set(&mut self.address, "country", value),
            PatientElement::AddressText => set(&mut self.address, "text", value),
        }
        Ok(())
    }
}

fn set(map: &mut Map<String, Value>, key: &str, value: &str) {
    map.insert(key.into(), json!(value));
}

fn push(object: &mut Value, key: &str, value: Value) {
    if let Some(items) = object.get_mut(key).and_then(Value::as_array_mut) {
        items.push(value);
    } else {
        object[key] = json!([value]);
    }
}

fn push_map(map: &mut Map<String, Value>, key: &str, value: Value) {
    match map.get_mut(key).and_then(Value::as_array_mut) {
        Some(items) => items.push(value),
        None => {
            map.insert(key.into(), json!([value]));
        }
    }
}
