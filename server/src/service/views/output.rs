//! The output formats of `$run` (SQL-on-FHIR's `_format`): CSV with a
//! header row (RFC 4180), NDJSON (one JSON object per row) and JSON (an
//! array of row objects). Also the CSV cells of materialisation's COPY, in
//! which an unquoted empty cell is NULL and `""` is the empty string.

use crate::error::ApiError;
use crate::service::{FhirResponse, ResponseBody};
use actix_web::http::StatusCode;
use fhir::view::{Row, ViewDefinition};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Ndjson,
    Csv,
}

impl Format {
    pub fn parse(value: &str) -> Result<Format, ApiError> {
        match value.trim().replace(' ', "+").as_str() {
            "json" | "application/json" | "application/fhir+json" => Ok(Format::Json),
            "ndjson"
            | "application/ndjson"
            | "application/x-ndjson"
            | "application/fhir+ndjson" => Ok(Format::Ndjson),
            "csv" | "text/csv" => Ok(Format::Csv),
            other => Err(ApiError::invalid(format!(
                "$run answers csv, ndjson or json, not {other:?}"
            ))
            .at("_format")),
        }
    }

    /// Whether `value` names one of the formats (for content negotiation).
    pub fn is_known(value: &str) -> bool {
        Format::parse(value).is_ok()
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// Rows on their way out, in one format.
pub struct Writer {
    format: Format,
    text: String,
    rows: usize,
}

impl Writer {
    pub fn new(format: Format, header: bool, view: &ViewDefinition) -> Writer {
        let mut text = String::new();
        match format {
            Format::Json => text.push('['),
            Format::Csv if header => {
                let names: Vec<Value> = view
                    .columns()
                    .iter()
                    .map(|c| Value::String(c.name.clone()))
                    .collect();
                csv_line(&mut text, &names);
            }
            _ => {}
        }
        Writer {
            format,
            text,
            rows: 0,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn row(&mut self, view: &ViewDefinition, row: Row) {
        match self.format {
            Format::Csv => csv_line(&mut self.text, &row),
            Format::Ndjson | Format::Json => {
                if self.format == Format::Json && self.rows > 0 {
                    self.text.push(',');
                }
                let object = Value::Object(view.row_object(row));
                self.text.push_str(&object.to_string());
                if self.format == Format::Ndjson {
                    self.text.push('\n');
                }
            }
        }
        self.rows += 1;
    }

    pub fn finish(mut self) -> FhirResponse {
        if self.format == Format::Json {
            self.text.push(']');
        }
        let mut response = FhirResponse::empty(StatusCode::OK);
        response.body = ResponseBody::Data {
            content_type: self.format.content_type(),
            text: self.text,
        };
        response
    }
}

fn csv_line(out: &mut String, cells: &[Value]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_cell(out, cell);
    }
    out.push('\n');
}

/// One CSV cell: nothing for null, numbers and booleans as they are,
/// strings quoted when they need it (or are empty), arrays and objects as
/// quoted JSON.
pub fn csv_cell(out: &mut String, value: &Value) {
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => quoted(out, s),
        other => quoted(out, &other.to_string()),
    }
}

fn quoted(out: &mut String, text: &str) {
    if !text.is_empty() && !text.contains([',', '"', '\n', '\r']) {
        out.push_str(text);
        return;
    }
    out.push('"');
    out.push_str(&text.replace('"', "\"\""));
    out.push('"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cell(value: Value) -> String {
        let mut out = String::new();
        csv_cell(&mut out, &value);
        out
    }

    #[test]
    fn csv_cells_quote_what_needs_quoting_and_leave_null_empty() {
        for (value, expected) in [
            (json!(null), ""),
            (json!(""), "\"\""),
            (json!("plain"), "plain"),
            (json!("a,b"), "\"a,b\""),
            (json!("say \"hi\""), "\"say \"\"hi\"\"\""),
            (json!("two\nlines"), "\"two\nlines\""),
            (json!(1.50), "1.5"),
            (json!(true), "true"),
            (json!(["x", "y"]), "\"[\"\"x\"\",\"\"y\"\"]\""),
        ] {
            assert_eq!(cell(value.clone()), expected, "{value}");
        }
    }
}
