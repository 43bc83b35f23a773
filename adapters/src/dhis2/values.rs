//! DHIS2 data values (sent as strings) → FHIR values, by the data
//! element's configured value type: numbers keep their decimal text
//! exactly, option codes go through the configured option map.

use super::config::{DataElement, ValueType};
use super::fields;
use serde_json::{Number, Value, json};
use std::str::FromStr;

/// The Observation `value[x]` name and value for one data value.
pub fn observation_value(
    element: &DataElement,
    raw: &str,
    offset: &str,
) -> Result<(&'static str, Value), String> {
    match element.value_type {
        ValueType::Number => Ok(("valueQuantity", quantity(element, decimal(raw)?))),
        ValueType::Integer => {
            let number = integer(raw)?;
            match element.unit {
                Some(_) => Ok(("valueQuantity", quantity(element, number))),
                None => Ok(("valueInteger", Value::Number(number))),
            }
        }
        ValueType::Text => Ok(("valueString", json!(raw))),
        ValueType::Boolean => match raw {
            "true" | "1" => Ok(("valueBoolean", json!(true))),
            "false" | "0" => Ok(("valueBoolean", json!(false))),
            _ => Err(format!("{raw:?} is not a boolean (true or false)")),
        },
        ValueType::TrueOnly => match raw {
            "true" | "1" => Ok(("valueBoolean", json!(true))),
            _ => Err(format!(
                "{raw:?} is not valid for a yes-only data element (only true)"
            )),
        },
        ValueType::OptionSet => match element.options.get(raw) {
            Some(coding) => Ok((
                "valueCodeableConcept",
                json!({"coding": [coding.to_json()], "text": raw}),
            )),
            None => Err(format!(
                "option {raw:?} is not in the config's options for this data element"
            )),
        },
        ValueType::Date => Ok(("valueDateTime", json!(fields::date_time(raw, offset)?))),
    }
}

/// A Quantity in the element's UCUM unit (or none, for integers without one).
pub fn quantity(element: &DataElement, value: Number) -> Value {
    let mut quantity = json!({"value": value});
    if let Some(unit) = &element.unit {
        let display = unit.display.as_ref().unwrap_or(&unit.code);
        quantity["unit"] = json!(display.as_str());
        quantity["system"] = json!("http://unitsofmeasure.org");
        quantity["code"] = json!(unit.code.as_str());
    }
    quantity
}

/// A decimal as DHIS2 sends it (`12`, `7.50`, `-0.3`, `+4`), kept as text
/// in a JSON number; leading zeros of the integer part are dropped.
pub fn decimal(raw: &str) -> Result<Number, String> {
    let bad = || format!("{raw:?} is not a number");
    let unsigned = raw.strip_prefix('+').unwrap_or(raw);
    let (sign, digits) = match unsigned.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", unsigned),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let all_digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
        return Err(bad());
    }
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let text = match fraction {
        Some(fraction) => format!("{sign}{whole}.{fraction}"),
        None => format!("{sign}{whole}"),
    };
    Number::from_str(&text).map_err(|_| bad())
}

/// An integer within FHIR's 32-bit range.
pub fn integer(raw: &str) -> Result<Number, String> {
    raw.strip_prefix('+')
        .unwrap_or(raw)
        .parse::<i32>()
        .map(Number::from)
        .map_err(|_| format!("{raw:?} is not an integer"))
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn decimals_keep_their_text() {
        for (raw, expected) in [
            ("7.50", "7.50"),
            ("+4", "4"),
            ("-0.3", "-0.3"),
            ("007", "7"),
            ("0", "0"),
        ] {
            assert_eq!(
                decimal(raw).map(|n| n.to_string()),
                Ok(expected.to_owned()),
                "{raw}"
            );
        }
        for bad in ["", "abc", "1e5", "1.", ".5", "1,5", "--1"] {
            assert!(decimal(bad).is_err(), "{bad}");
        }
    }
}
