//! The search-parameter registry, built once from the official R4
//! SearchParameter definitions compiled into the `fhir` crate.

use fhir::fhirpath::Expression;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// The search parameter types Baraza indexes so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Token,
    Reference,
    String,
    Date,
    Number,
    Quantity,
    Uri,
}

impl ParamKind {
    fn parse(kind: &str) -> Option<ParamKind> {
        match kind {
            "token" => Some(ParamKind::Token),
            "reference" => Some(ParamKind::Reference),
            "string" => Some(ParamKind::String),
            "date" => Some(ParamKind::Date),
            "number" => Some(ParamKind::Number),
            "quantity" => Some(ParamKind::Quantity),
            "uri" => Some(ParamKind::Uri),
            _ => None,
        }
    }

    /// The index table holding this kind's rows.
    pub fn table(self) -> &'static str {
        match self {
            ParamKind::Token => "search_token",
            ParamKind::Reference => "search_reference",
            ParamKind::String => "search_string",
            ParamKind::Date => "search_date",
            ParamKind::Number => "search_number",
            ParamKind::Quantity => "search_quantity",
            ParamKind::Uri => "search_uri",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ParamKind::Token => "token",
            ParamKind::Reference => "reference",
            ParamKind::String => "string",
            ParamKind::Date => "date",
            ParamKind::Number => "number",
            ParamKind::Quantity => "quantity",
            ParamKind::Uri => "uri",
        }
    }
}

/// An indexed search parameter: its code, type, parsed FHIRPath expression
/// (shared by every base type of the definition) and, for references, the
/// resource types it may point at.
#[derive(Debug, Clone)]
pub struct SearchParam {
    pub code: &'static str,
    pub kind: ParamKind,
    pub expression: Arc<Expression>,
    pub targets: Arc<Vec<String>>,
}

#[derive(Debug, Default)]
pub struct Registry {
    /// resource type → parameters indexed for it.
    indexed: HashMap<String, Vec<SearchParam>>,
    /// resource type → every parameter code the spec defines for it.
    all_codes: HashMap<String, Vec<String>>,
}

impl Registry {
    pub fn global() -> &'static Registry {
        static CELL: OnceLock<Registry> = OnceLock::new();
        CELL.get_or_init(|| Registry::build(fhir::definitions::search_parameters_bundle()))
    }

    /// Every indexed parameter of a resource type.
    pub fn params(&self, resource_type: &str) -> &[SearchParam] {
        self.indexed.get(resource_type).map_or(&[], Vec::as_slice)
    }

    pub fn param(&self, resource_type: &str, code: &str) -> Option<&SearchParam> {
        self.params(resource_type).iter().find(|p| p.code == code)
    }

    /// Whether the spec defines `code` for the type (indexed or not).
    pub fn is_defined(&self, resource_type: &str, code: &str) -> bool {
        self.all_codes
            .get(resource_type)
            .is_some_and(|codes| codes.iter().any(|c| c == code))
    }

    fn build(bundle: &Value) -> Registry {
        let mut registry = Registry::default();
        let entries = bundle["entry"].as_array().map_or(&[][..], Vec::as_slice);
        for entry in entries {
            let sp = &entry["resource"];
            let (Some(code), Some(kind)) = (sp["code"].as_str(), sp["type"].as_str()) else {
                continue;
            };
            let indexed = match (ParamKind::parse(kind), sp["expression"].as_str()) {
                (Some(kind), Some(source)) if code != "_id" => match Expression::parse(source) {
                    Ok(expression) => Some((kind, Arc::new(expression))),
                    Err(e) => {
                        tracing::warn!(code, error = %e, "search parameter expression does not parse");
                        None
                    }
                },
                _ => None,
            };
            let targets: Arc<Vec<String>> = Arc::new(
                sp["target"]
                    .as_array()
                    .map(|t| {
                        t.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            );
            let code_static: &'static str = Box::leak(code.to_owned().into_boxed_str());
            let bases: Vec<&str> = sp["base"]
                .as_array()
                .map(|b| b.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for base in bases {
                let applies_to: Vec<&str> = if base == "Resource" || base == "DomainResource" {
                    fhir::id::RESOURCE_TYPES.to_vec()
                } else {
                    vec![base]
                };
                for resource_type in applies_to {
                    registry
                        .all_codes
                        .entry(resource_type.to_owned())
                        .or_default()
                        .push(code.to_owned());
                    if let Some((kind, expression)) = &indexed {
                        registry
                            .indexed
                            .entry(resource_type.to_owned())
                            .or_default()
                            .push(SearchParam {
                                code: code_static,
                                kind: *kind,
                                expression: expression.clone(),
                                targets: targets.clone(),
                            });
                    }
                }
            }
        }
        registry
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn registry_knows_patient_identifier_and_tags() {
        let r = Registry::global();
        assert!(r.param("Patient", "identifier").is_some());
        assert!(r.param("Observation", "code").is_some());
        assert!(r.param("Patient", "_tag").is_some());
        assert!(
            r.param("Patient", "phone").is_some(),
            "expressions with where() are indexed too"
        );
        assert!(r.param("Observation", "value-concept").is_some());
        let subject = r.param("Observation", "subject").unwrap();
        assert_eq!(subject.kind, ParamKind::Reference);
        assert!(subject.targets.iter().any(|t| t == "Patient"));
        assert!(r.is_defined("Patient", "name"));
        assert!(!r.is_defined("Patient", "nonsense"));
    }
}
