//! The search-parameter registry, built once from the official R4
//! SearchParameter definitions compiled into the `fhir` crate.

use fhir::fhirpath::Expression;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// The search parameter types Baraza indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Token,
    Reference,
    String,
    Date,
    Number,
    Quantity,
    Uri,
    /// Two components whose first is a token; the rows live in the second
    /// component's table, keyed by `code$token` (see [`composite_key`]).
    Composite,
    /// The one R4 `special` parameter: Location `near`, on Location.position.
    Position,
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
            "composite" => Some(ParamKind::Composite),
            "special" => Some(ParamKind::Position),
            _ => None,
        }
    }

    /// The index table holding this kind's rows (a composite's rows live
    /// in its second component's table).
    pub fn table(self) -> Option<&'static str> {
        Some(match self {
            ParamKind::Token => "search_token",
            ParamKind::Reference => "search_reference",
            ParamKind::String => "search_string",
            ParamKind::Date => "search_date",
            ParamKind::Number => "search_number",
            ParamKind::Quantity => "search_quantity",
            ParamKind::Uri => "search_uri",
            ParamKind::Position => "search_position",
            ParamKind::Composite => return None,
        })
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
            ParamKind::Composite => "composite",
            ParamKind::Position => "special",
        }
    }
}

/// An indexed search parameter: its code, type, parsed FHIRPath expression
/// (shared by every base type of the definition), for references the
/// resource types it may point at, and for composites the components.
#[derive(Debug, Clone)]
pub struct SearchParam {
    pub code: &'static str,
    pub kind: ParamKind,
    pub expression: Arc<Expression>,
    pub targets: Arc<Vec<String>>,
    /// Composite components (token first, then one other kind), evaluated
    /// on each item the composite's expression yields.
    pub components: Arc<Vec<Component>>,
    /// The canonical URL of the definition.
    pub url: Arc<str>,
}

/// One component of a composite parameter.
#[derive(Debug, Clone)]
pub struct Component {
    pub kind: ParamKind,
    pub expression: Arc<Expression>,
}

/// The `param` value under which a composite's rows are stored: the
/// composite's code and the first (token) component's key.
pub fn composite_key(code: &str, token_key: &str) -> String {
    format!("{code}${token_key}")
}

/// Names of the derived rows of token and reference parameters: the texts
/// behind `:text`, the identifier types behind `:of-type`, and the
/// identifiers behind a reference's `:identifier`.
pub fn derived_param(code: &str, modifier: &str) -> String {
    format!("{code}:{modifier}")
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
        let by_url: HashMap<&str, &Value> = entries
            .iter()
            .filter_map(|e| Some((e["resource"]["url"].as_str()?, &e["resource"])))
            .collect();
        for entry in entries {
            let sp = &entry["resource"];
            let (Some(code), Some(kind)) = (sp["code"].as_str(), sp["type"].as_str()) else {
                continue;
            };
            let components = Arc::new(components_of(sp, &by_url));
            let indexed = match (ParamKind::parse(kind), sp["expression"].as_str()) {
                (Some(ParamKind::Composite), _) if components.len() != 2 => None,
                (Some(ParamKind::Position), _) if code != "near" => None,
                (Some(kind), Some(source)) if code != "_id" => match Expression::parse(source) {
                    Ok(expression) => Some((kind, Arc::new(expression))),
                    Err(e) => {
                        tracing::warn!(code, error = %e, "search parameter expression does not parse");
                        None
                    }
                },
                _ => None,
            };
            let url: Arc<str> = Arc::from(sp["url"].as_str().unwrap_or_default());
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
                                components: components.clone(),
                                url: url.clone(),
                            });
                    }
                }
            }
        }
        registry
    }
}

/// A composite's components when Baraza can index them: exactly two, the
/// first a token (R4's composites are token$token, token$quantity,
/// token$date and token$string, except MolecularSequence's three-part
/// ones and DocumentReference `relationship`, which stay unsupported).
fn components_of(sp: &Value, by_url: &HashMap<&str, &Value>) -> Vec<Component> {
    let Some(parts) = sp["component"].as_array() else {
        return Vec::new();
    };
    let components: Option<Vec<Component>> = parts
        .iter()
        .map(|part| {
            let definition = by_url.get(part["definition"].as_str()?)?;
            let kind = ParamKind::parse(definition["type"].as_str()?)?;
            let expression = Expression::parse(part["expression"].as_str()?).ok()?;
            Some(Component {
                kind,
                expression: Arc::new(expression),
            })
        })
        .collect();
    match components {
        Some(c)
            if c.len() == 2
                && c[0].kind == ParamKind::Token
                && matches!(
                    c[1].kind,
                    ParamKind::Token | ParamKind::Quantity | ParamKind::Date | ParamKind::String
                ) =>
        {
            c
        }
        _ => Vec::new(),
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
        let cvq = r.param("Observation", "code-value-quantity").unwrap();
        assert_eq!(cvq.kind, ParamKind::Composite);
        assert_eq!(cvq.components[1].kind, ParamKind::Quantity);
        assert!(
            r.param("Observation", "component-code-value-quantity")
                .is_some()
        );
        assert_eq!(
            r.param("Location", "near").unwrap().kind,
            ParamKind::Position
        );
        assert!(
            r.param("MolecularSequence", "chromosome-window-coordinate")
                .is_none()
        );
        assert!(!r.is_defined("Patient", "nonsense"));
    }
}
