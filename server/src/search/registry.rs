//! The search-parameter registry, built once from the official R4
//! SearchParameter definitions compiled into the `fhir` crate.

use fhir::fhirpath::Expression;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// A token parameter Baraza indexes: its code and its parsed FHIRPath
/// expression (shared by every base type of the definition).
#[derive(Debug, Clone)]
pub struct TokenParam {
    pub code: &'static str,
    pub expression: Arc<Expression>,
}

#[derive(Debug, Default)]
pub struct Registry {
    /// resource type → token parameters indexed for it.
    tokens: HashMap<String, Vec<TokenParam>>,
    /// resource type → every parameter code the spec defines for it.
    all_codes: HashMap<String, Vec<String>>,
}

impl Registry {
    pub fn global() -> &'static Registry {
        static CELL: OnceLock<Registry> = OnceLock::new();
        CELL.get_or_init(|| Registry::build(fhir::definitions::search_parameters_bundle()))
    }

    pub fn token_params(&self, resource_type: &str) -> &[TokenParam] {
        self.tokens.get(resource_type).map_or(&[], Vec::as_slice)
    }

    pub fn token_param(&self, resource_type: &str, code: &str) -> Option<&TokenParam> {
        self.token_params(resource_type)
            .iter()
            .find(|p| p.code == code)
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
            let parsed = match (kind, sp["expression"].as_str()) {
                ("token", Some(source)) if code != "_id" => match Expression::parse(source) {
                    Ok(expression) => Some(Arc::new(expression)),
                    Err(e) => {
                        tracing::warn!(code, error = %e, "search parameter expression does not parse");
                        None
                    }
                },
                _ => None,
            };
            let code_static: &'static str = Box::leak(code.to_owned().into_boxed_str());
            let bases: Vec<&str> = sp["base"]
                .as_array()
                .map(|b| b.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for base in bases {
                let targets: Vec<&str> = if base == "Resource" || base == "DomainResource" {
                    fhir::id::RESOURCE_TYPES.to_vec()
                } else {
                    vec![base]
                };
                for target in targets {
                    registry
                        .all_codes
                        .entry(target.to_owned())
                        .or_default()
                        .push(code.to_owned());
                    if let Some(expression) = &parsed {
                        registry
                            .tokens
                            .entry(target.to_owned())
                            .or_default()
                            .push(TokenParam {
                                code: code_static,
                                expression: expression.clone(),
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
        assert!(r.token_param("Patient", "identifier").is_some());
        assert!(r.token_param("Observation", "code").is_some());
        assert!(r.token_param("Patient", "_tag").is_some());
        assert!(
            r.token_param("Patient", "phone").is_some(),
            "expressions with where() are indexed too"
        );
        assert!(r.token_param("Observation", "value-concept").is_some());
        assert!(r.is_defined("Patient", "name"));
        assert!(!r.is_defined("Patient", "nonsense"));
    }
}
