//! The view's `constant`s: a database name and one primitive `value[x]`
//! each, visible as `%name` in every expression of the view.

use super::ViewError;
use super::column::is_database_name;
use super::json::{array, object, required_string};
use crate::definitions::Primitive;
use serde_json::{Map, Value as Json};

/// A `constant`: `%name` in every expression of the view.
#[derive(Debug, Clone)]
pub(super) struct Constant {
    pub name: String,
    pub value: Json,
    pub primitive: Primitive,
}

/// Constants FHIRPath itself defines, or the view engine sets.
pub(super) const BUILT_IN_CONSTANTS: &[&str] = &[
    "resource",
    "rootResource",
    "context",
    "ucum",
    "sct",
    "loinc",
    "rowIndex",
];

pub(super) fn constants(map: &Map<String, Json>) -> Result<Vec<Constant>, ViewError> {
    let mut out: Vec<Constant> = Vec::new();
    for (k, item) in array(map.get("constant"), "constant")?.iter().enumerate() {
        let at = format!("constant[{k}]");
        let c = object(item, &at)?;
        let name = required_string(c, "name", &at)?;
        if !is_database_name(name) || BUILT_IN_CONSTANTS.contains(&name) {
            return Err(ViewError::new(
                format!("{at}.name"),
                format!("'{name}' is not a valid constant name"),
            ));
        }
        if out.iter().any(|other| other.name == name) {
            return Err(ViewError::new(
                format!("{at}.name"),
                "constant name is used twice",
            ));
        }
        let mut value = None;
        for (key, v) in c {
            match key.as_str() {
                "id" | "extension" | "modifierExtension" | "name" => {}
                _ => match constant_value(key, v) {
                    Some(found) if value.is_none() => value = Some(found),
                    Some(_) => return Err(ViewError::new(&at, "has more than one value[x]")),
                    None => {
                        return Err(ViewError::new(
                            format!("{at}.{key}"),
                            "is not a primitive value[x] element",
                        ));
                    }
                },
            }
        }
        let Some((primitive, value)) = value else {
            return Err(ViewError::new(
                &at,
                "needs a value[x] (valueString, valueInteger...)",
            ));
        };
        out.push(Constant {
            name: name.to_owned(),
            value,
            primitive,
        });
    }
    Ok(out)
}

/// `valueDateTime: "..."` → the `dateTime` primitive and its JSON value,
/// when the JSON kind suits the type.
fn constant_value(key: &str, v: &Json) -> Option<(Primitive, Json)> {
    let suffix = key.strip_prefix("value")?;
    let mut chars = suffix.chars();
    let first = chars.next()?;
    let code = format!("{}{}", first.to_ascii_lowercase(), chars.as_str());
    let primitive = Primitive::from_code(&code)?;
    let kind_ok = match primitive {
        Primitive::Boolean => v.is_boolean(),
        Primitive::Decimal => v.is_number(),
        Primitive::Integer | Primitive::PositiveInt | Primitive::UnsignedInt => v.is_i64(),
        _ => v.is_string(),
    };
    kind_ok.then(|| (primitive, v.clone()))
}
