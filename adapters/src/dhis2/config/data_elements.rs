//! Data elements in the mapping config: the code each one gets, how its
//! value becomes a FHIR value, and where its aggregate values go. The
//! combinations that make no sense (a number without a unit, options on a
//! text element) are refused while the file is read.

use super::scalars::{self, Coding, NonEmpty};
use serde::Deserialize;
use std::collections::BTreeMap;

/// How a data element's value becomes an Observation value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ValueType {
    /// valueQuantity with the UCUM `unit`.
    Number,
    /// valueInteger, or valueQuantity when a `unit` is given.
    Integer,
    /// valueString.
    Text,
    /// valueBoolean from `true` / `false`.
    Boolean,
    /// valueBoolean from `true` (DHIS2 "yes only").
    TrueOnly,
    /// valueCodeableConcept through `options`.
    OptionSet,
    /// valueDateTime.
    Date,
}

/// Where a data value of a data value set goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AggregateAs {
    /// A group of the MeasureReport of its data set, org unit and period.
    #[default]
    MeasureReport,
    /// An Observation of its own.
    Observation,
}

/// A UCUM unit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    pub code: NonEmpty,
    #[serde(default)]
    pub display: Option<NonEmpty>,
}

/// One data element.
#[derive(Debug, Clone)]
pub struct DataElement {
    pub name: Option<NonEmpty>,
    pub code: Coding,
    pub value_type: ValueType,
    pub unit: Option<Unit>,
    /// DHIS2 option code → coding (option sets only).
    pub options: BTreeMap<String, Coding>,
    /// Observation.category code from
    /// `http://terminology.hl7.org/CodeSystem/observation-category`.
    pub category: Option<String>,
    pub aggregate: AggregateAs,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawDataElement {
    #[serde(default)]
    name: Option<NonEmpty>,
    code: Coding,
    value_type: ValueType,
    #[serde(default)]
    unit: Option<Unit>,
    #[serde(default)]
    options: BTreeMap<String, Coding>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    aggregate: AggregateAs,
}

impl<'de> Deserialize<'de> for DataElement {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        scalars::deserialize_checked::<D, RawDataElement, DataElement>(deserializer)
    }
}

const CATEGORIES: [&str; 9] = [
    "social-history",
    "vital-signs",
    "imaging",
    "laboratory",
    "procedure",
    "survey",
    "exam",
    "therapy",
    "activity",
];

impl TryFrom<RawDataElement> for DataElement {
    type Error = String;
    fn try_from(raw: RawDataElement) -> Result<Self, String> {
        match raw.value_type {
            ValueType::Number if raw.unit.is_none() => {
                return Err("valueType number needs a UCUM `unit`".into());
            }
            ValueType::Integer | ValueType::Number => {}
            _ if raw.unit.is_some() => {
                return Err("`unit` is for valueType number or integer only".into());
            }
            _ => {}
        }
        let option_set = raw.value_type == ValueType::OptionSet;
        if option_set && raw.options.is_empty() {
            return Err("valueType optionSet needs `options` (DHIS2 option code → coding)".into());
        }
        if !option_set && !raw.options.is_empty() {
            return Err("`options` is for valueType optionSet only".into());
        }
        if let Some(category) = &raw.category {
            if !CATEGORIES.contains(&category.as_str()) {
                return Err(format!(
                    "category {category:?} is not an observation-category code ({})",
                    CATEGORIES.join(", ")
                ));
            }
        }
        Ok(DataElement {
            name: raw.name,
            code: raw.code,
            value_type: raw.value_type,
            unit: raw.unit,
            options: raw.options,
            category: raw.category,
            aggregate: raw.aggregate,
        })
    }
}
