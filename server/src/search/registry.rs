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

/// The start of the canonical URL of every R4 search parameter definition;
/// a custom definition has another.
pub const R4_DEFINITIONS: &str = "http://hl7.org/fhir/SearchParameter/";

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
    /// For a parameter whose values are exactly those of two others
    /// ([`UNIONS`]): those two. It has no rows of its own; a search on it
    /// searches both.
    pub union_of: Option<[&'static str; 2]>,
}

/// Observation's `combo-` parameters: each is, by its definition, the
/// union of the parameter on the Observation and the one on its
/// components (`combo-code` is `Observation.code |
/// Observation.component.code`; the `combo-` composites are evaluated on
/// `Observation | Observation.component`, each item giving the same pair
/// as the plain and the `component-` composite). Storing them repeated an
/// Observation's rows: 4 of its 16, 3 of its 6 quantity rows.
const UNIONS: &[(&str, [&str; 2])] = &[
    ("combo-code", ["code", "component-code"]),
    (
        "combo-data-absent-reason",
        ["data-absent-reason", "component-data-absent-reason"],
    ),
    (
        "combo-value-concept",
        ["value-concept", "component-value-concept"],
    ),
    (
        "combo-value-quantity",
        ["value-quantity", "component-value-quantity"],
    ),
    (
        "combo-code-value-concept",
        ["code-value-concept", "component-code-value-concept"],
    ),
    (
        "combo-code-value-quantity",
        ["code-value-quantity", "component-code-value-quantity"],
    ),
];

/// The two parameters the definition at `url` is the union of.
fn union_of(url: &str) -> Option<[&'static str; 2]> {
    let code = url.strip_prefix("http://hl7.org/fhir/SearchParameter/Observation-")?;
    UNIONS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, parts)| *parts)
}

/// The name of a row or clause of `code` (itself, `code:modifier` or
/// `code$key`) for the parameter `part` instead.
pub fn renamed(name: &str, code: &str, part: &str) -> String {
    match name.strip_prefix(code) {
        Some(rest) if rest.is_empty() || rest.starts_with([':', '$']) => format!("{part}{rest}"),
        _ => name.to_owned(),
    }
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

#[derive(Debug, Default, Clone)]
pub struct Registry {
    /// resource type → parameters indexed for it.
    indexed: HashMap<String, Vec<SearchParam>>,
    /// resource type → every parameter code the spec defines for it.
    all_codes: HashMap<String, Vec<String>>,
}

impl Registry {
    pub fn global() -> &'static Registry {
        static CELL: OnceLock<Registry> = OnceLock::new();
        CELL.get_or_init(|| {
            let mut registry = Registry::build(fhir::definitions::search_parameters_bundle());
            for sp in profile_parameters() {
                registry.add(&sp, &HashMap::new());
            }
            registry
        })
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
        let entries: Vec<&Value> = bundle["entry"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|e| &e["resource"])
            .collect();
        let mut registry = Registry::default();
        let by_url = urls(&entries, &[]);
        for sp in entries {
            registry.add(sp, &by_url);
        }
        registry
    }

    /// This registry plus custom SearchParameter resources. A definition is
    /// skipped, with the reason, when its code is already defined for one
    /// of its bases, or its type or expression cannot be used.
    pub fn extended(&self, custom: &[Value]) -> (Registry, Vec<String>) {
        let mut registry = self.clone();
        let mut problems = Vec::new();
        let base_definitions: Vec<&Value> = fhir::definitions::search_parameters_bundle()["entry"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|e| &e["resource"])
            .collect();
        let custom_refs: Vec<&Value> = custom.iter().collect();
        let by_url = urls(&base_definitions, &custom_refs);
        for sp in custom {
            let code = sp["code"].as_str().unwrap_or_default();
            let url = sp["url"].as_str().unwrap_or_default();
            let bases: Vec<&str> = sp["base"]
                .as_array()
                .map(|b| b.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let why = if code.is_empty() || bases.is_empty() {
                Some("it has no code or no base".to_owned())
            } else if let Some(b) = bases.iter().find(|b| self.is_defined(b, code)) {
                Some(format!("{b} already has a parameter {code}"))
            } else if sp["expression"].as_str().is_none() {
                Some("it has no expression".to_owned())
            } else {
                match sp["expression"].as_str().map(Expression::parse) {
                    Some(Err(e)) => Some(format!("its expression does not parse: {e}")),
                    _ => ParamKind::parse(sp["type"].as_str().unwrap_or_default())
                        .is_none()
                        .then(|| "its type is not supported".to_owned()),
                }
            };
            match why {
                Some(why) => {
                    problems.push(format!("SearchParameter {url} ({code}) skipped: {why}"))
                }
                None => registry.add(sp, &by_url),
            }
        }
        (registry, problems)
    }

    /// Adds one SearchParameter definition under each of its bases.
    fn add(&mut self, sp: &Value, by_url: &HashMap<&str, &Value>) {
        let (Some(code), Some(kind)) = (sp["code"].as_str(), sp["type"].as_str()) else {
            return;
        };
        let components = Arc::new(components_of(sp, by_url));
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
        let union = union_of(&url);
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
        let code_static: &'static str = intern(code);
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
                self.all_codes
                    .entry(resource_type.to_owned())
                    .or_default()
                    .push(code.to_owned());
                if let Some((kind, expression)) = &indexed {
                    self.indexed
                        .entry(resource_type.to_owned())
                        .or_default()
                        .push(SearchParam {
                            code: code_static,
                            kind: *kind,
                            expression: expression.clone(),
                            targets: targets.clone(),
                            components: components.clone(),
                            url: url.clone(),
                            union_of: union,
                        });
                }
            }
        }
    }
}

/// Definitions by canonical URL (for composite components).
fn urls<'a>(base: &[&'a Value], custom: &[&'a Value]) -> HashMap<&'a str, &'a Value> {
    base.iter()
        .chain(custom)
        .filter_map(|sp| Some((sp["url"].as_str()?, *sp)))
        .collect()
}

/// Parameter codes live as long as the process; each distinct code is
/// allocated once, however often custom registries are rebuilt.
fn intern(code: &str) -> &'static str {
    static CODES: OnceLock<std::sync::Mutex<std::collections::HashSet<&'static str>>> =
        OnceLock::new();
    let codes = CODES.get_or_init(Default::default);
    let mut set = codes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(existing) = set.get(code) {
        return existing;
    }
    let leaked: &'static str = Box::leak(code.to_owned().into_boxed_str());
    set.insert(leaked);
    leaked
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

/// Search parameters that IHE profiles Baraza implements define beyond
/// R4's own: PDQm's `mothersMaidenName` (ITI-78), on the R4 extension
/// `patient-mothersMaidenName`.
fn profile_parameters() -> Vec<Value> {
    vec![serde_json::json!({
        "resourceType": "SearchParameter",
        "url": "https://profiles.ihe.net/ITI/PDQm/SearchParameter/PatientMothersMaidenName",
        "name": "PatientMothersMaidenName",
        "status": "active",
        "code": "mothersMaidenName",
        "base": ["Patient"],
        "type": "string",
        "expression": "Patient.extension('http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName').value"
    })]
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
