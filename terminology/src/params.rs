//! Operation input: query parameters (GET) and a Parameters resource
//! (POST) in one form, each value with the expression that names it in
//! errors (`code`, or `Parameters.parameter[2]`); and the Parameters
//! resource operations answer with.

use crate::TermError;
use serde_json::{Map, Value, json};

#[derive(Debug, Clone)]
pub enum ParamValue {
    /// A primitive (`valueCode`, `valueUri`, a query parameter).
    Text(String),
    /// A complex value (`valueCoding`, `valueCodeableConcept`) or a resource.
    Json(Value),
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub value: ParamValue,
    pub expression: String,
}

/// The input of one operation.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<Param>);

/// A Coding from the input (`coding`, or `system` + `code` + `display`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Coding {
    pub system: Option<String>,
    pub version: Option<String>,
    pub code: Option<String>,
    pub display: Option<String>,
}

impl Coding {
    pub fn from_json(v: &Value) -> Coding {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Coding {
            system: s("system"),
            version: s("version"),
            code: s("code"),
            display: s("display"),
        }
    }
}

/// Query parameters that are not operation parameters.
const GENERAL: &[&str] = &["_format", "_pretty", "_summary", "_elements"];

impl Params {
    pub fn from_query(query: &[(String, String)]) -> Params {
        Params(
            query
                .iter()
                .filter(|(name, _)| !GENERAL.contains(&name.as_str()))
                .map(|(name, value)| Param {
                    name: name.clone(),
                    value: ParamValue::Text(value.clone()),
                    expression: name.clone(),
                })
                .collect(),
        )
    }

    /// Adds a Parameters resource's parameters.
    pub fn add_parameters(&mut self, body: &Value) -> Result<(), TermError> {
        if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
            return Err(TermError::invalid(
                "the body of a terminology operation must be a Parameters resource",
            )
            .at("resourceType"));
        }
        for (i, p) in body
            .get("parameter")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let expression = format!("Parameters.parameter[{i}]");
            let Some(name) = p.get("name").and_then(Value::as_str) else {
                return Err(TermError::invalid("a parameter has no name").at(expression));
            };
            let value =
                p.as_object()
                    .into_iter()
                    .flatten()
                    .find_map(|(k, v)| match (k.as_str(), v) {
                        ("resource", v) => Some(ParamValue::Json(v.clone())),
                        (k, Value::Object(_)) if k.starts_with("value") => {
                            Some(ParamValue::Json(v.clone()))
                        }
                        (k, Value::String(s)) if k.starts_with("value") => {
                            Some(ParamValue::Text(s.clone()))
                        }
                        (k, Value::Bool(b)) if k.starts_with("value") => {
                            Some(ParamValue::Text(b.to_string()))
                        }
                        (k, Value::Number(n)) if k.starts_with("value") => {
                            Some(ParamValue::Text(n.to_string()))
                        }
                        _ => None,
                    });
            let Some(value) = value else {
                return Err(
                    TermError::invalid(format!("the parameter {name:?} has no value"))
                        .at(expression),
                );
            };
            self.0.push(Param {
                name: name.to_owned(),
                value,
                expression,
            });
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Param> {
        self.0.iter().find(|p| p.name == name)
    }

    /// A primitive parameter's text and expression.
    pub fn text(&self, name: &str) -> Result<Option<(&str, &str)>, TermError> {
        match self.get(name) {
            None => Ok(None),
            Some(Param {
                value: ParamValue::Text(t),
                expression,
                ..
            }) => Ok(Some((t, expression))),
            Some(p) => Err(
                TermError::invalid(format!("{name} must be a primitive value")).at(&p.expression),
            ),
        }
    }

    pub fn str(&self, name: &str) -> Result<Option<&str>, TermError> {
        Ok(self.text(name)?.map(|(t, _)| t))
    }

    /// Every value of a repeating primitive parameter.
    pub fn all_text(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|p| p.name == name)
            .filter_map(|p| match &p.value {
                ParamValue::Text(t) => Some(t.as_str()),
                ParamValue::Json(_) => None,
            })
            .collect()
    }

    pub fn json(&self, name: &str) -> Result<Option<(&Value, &str)>, TermError> {
        match self.get(name) {
            None => Ok(None),
            Some(Param {
                value: ParamValue::Json(v),
                expression,
                ..
            }) => Ok(Some((v, expression))),
            Some(p) => Err(TermError::invalid(format!(
                "{name} must be a complex value (a Coding, CodeableConcept or resource)"
            ))
            .at(&p.expression)),
        }
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, TermError> {
        match self.text(name)? {
            None => Ok(None),
            Some(("true", _)) => Ok(Some(true)),
            Some(("false", _)) => Ok(Some(false)),
            Some((other, at)) => Err(TermError::invalid(format!(
                "{name} must be true or false, not {other:?}"
            ))
            .at(at)),
        }
    }

    pub fn count(&self, name: &str) -> Result<Option<usize>, TermError> {
        match self.text(name)? {
            None => Ok(None),
            Some((raw, at)) => raw.parse::<usize>().map(Some).map_err(|_| {
                TermError::invalid(format!(
                    "{name} must be a non-negative integer, not {raw:?}"
                ))
                .at(at)
            }),
        }
    }

    /// Refuses a parameter the operation does not know (a typo would
    /// otherwise be silently ignored).
    pub fn only(&self, known: &[&str]) -> Result<(), TermError> {
        match self.0.iter().find(|p| !known.contains(&p.name.as_str())) {
            Some(p) => Err(TermError::invalid(format!(
                "unknown parameter {:?} (this operation takes {})",
                p.name,
                known.join(", ")
            ))
            .at(&p.expression)),
            None => Ok(()),
        }
    }
}

/// Builds an output Parameters resource; each part is (name, value[x]
/// key, value), or (name, "part", [parts]).
#[derive(Debug, Default)]
pub struct Output(Vec<Value>);

impl Output {
    pub fn add(&mut self, name: &str, key: &str, value: Value) -> &mut Self {
        let mut p = Map::new();
        p.insert("name".into(), json!(name));
        p.insert(key.into(), value);
        self.0.push(Value::Object(p));
        self
    }

    pub fn part(&mut self, name: &str, parts: Output) -> &mut Self {
        self.0.push(json!({"name": name, "part": parts.0}));
        self
    }

    pub fn into_parameters(self) -> Value {
        json!({"resourceType": "Parameters", "parameter": self.0})
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parameters_name_their_position_and_queries_their_name() {
        let mut p = Params::from_query(&[
            ("url".into(), "http://x".into()),
            ("_format".into(), "json".into()),
        ]);
        p.add_parameters(&json!({"resourceType": "Parameters", "parameter": [
            {"name": "code", "valueCode": "a"},
            {"name": "count", "valueInteger": 5},
            {"name": "coding", "valueCoding": {"system": "s", "code": "c"}},
            {"name": "activeOnly", "valueString": "maybe"}]}))
            .unwrap();
        assert_eq!(p.text("url").unwrap(), Some(("http://x", "url")));
        assert!(p.get("_format").is_none());
        assert_eq!(
            p.text("code").unwrap(),
            Some(("a", "Parameters.parameter[0]"))
        );
        assert_eq!(p.count("count").unwrap(), Some(5));
        let (coding, at) = p.json("coding").unwrap().unwrap();
        assert_eq!(
            (Coding::from_json(coding).code.as_deref(), at),
            (Some("c"), "Parameters.parameter[2]")
        );
        let e = p.bool("activeOnly").unwrap_err();
        assert_eq!(e.expression.as_deref(), Some("Parameters.parameter[3]"));
        let e = p.only(&["url", "code", "count", "coding"]).unwrap_err();
        assert_eq!(e.expression.as_deref(), Some("Parameters.parameter[3]"));
        assert!(p.text("coding").is_err());
    }

    #[test]
    fn a_body_must_be_parameters_with_named_values() {
        let mut p = Params::default();
        assert!(
            p.add_parameters(&json!({"resourceType": "Patient"}))
                .is_err()
        );
        let e = p
            .add_parameters(&json!({"resourceType": "Parameters", "parameter": [{"name": "x"}]}))
            .unwrap_err();
        assert_eq!(e.expression.as_deref(), Some("Parameters.parameter[0]"));
    }
}
