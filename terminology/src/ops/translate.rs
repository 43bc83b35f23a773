//! `ConceptMap/$translate` (conceptmap-operation-translate): the stored
//! maps' elements matched by source code (and system, map url, source and
//! target value sets, target system), or by target with `reverse`.

use super::input_codings;
use crate::params::{Output, Params};
use crate::{TermError, Tx};
use serde_json::{Value, json};

const KNOWN: &[&str] = &[
    "url",
    "conceptMap",
    "conceptMapVersion",
    "code",
    "system",
    "version",
    "source",
    "coding",
    "codeableConcept",
    "target",
    "targetsystem",
    "dependency",
    "reverse",
];

pub async fn concept_map_translate(
    tx: &Tx<'_>,
    tenant: &str,
    params: &Params,
    instance: Option<&Value>,
) -> Result<Value, TermError> {
    params.only(KNOWN)?;
    let codings = input_codings(params, "system", "version")?;
    let reverse = params.bool("reverse")?.unwrap_or(false);
    let url = match (instance, params.text("url")?) {
        (Some(map), _) => map.get("url").and_then(Value::as_str).map(str::to_owned),
        (None, Some((url, at))) => {
            let known = tx
                .query_opt(
                    "SELECT 1 FROM term_concept_maps WHERE tenant IN ($1, '') AND url = $2",
                    &[&tenant, &url],
                )
                .await?;
            if known.is_none() {
                return Err(
                    TermError::not_found(format!("the concept map {url} is not known")).at(at),
                );
            }
            Some(url.to_owned())
        }
        (None, None) => None,
    };
    if params.get("conceptMap").is_some() {
        return Err(TermError::new(
            crate::error::Kind::Invalid,
            fhir::IssueCode::NotSupported,
            "an inline conceptMap is not supported; store the ConceptMap and name it with url",
        )
        .at(params
            .get("conceptMap")
            .map_or("conceptMap", |p| p.expression.as_str())));
    }
    let source = params.str("source")?;
    let target = params.str("target")?;
    let target_system = params.str("targetsystem")?;
    let (from, to) = if reverse {
        ("target", "source")
    } else {
        ("source", "target")
    };
    let statement = format!(
        "SELECT m.url, e.{to}_system, e.{to}_code, e.{to}_display, e.equivalence, e.comment \
         FROM term_map_entries e JOIN term_concept_maps m ON m.tenant = e.tenant AND m.id = e.map_id \
         WHERE e.tenant IN ($1, '') AND e.{from}_code = $2 AND ($3::text IS NULL OR e.{from}_system = $3) \
         AND ($4::text IS NULL OR m.url = $4) AND ($5::text IS NULL OR m.{from} = $5) \
         AND ($6::text IS NULL OR m.{to} = $6) AND ($7::text IS NULL OR e.{to}_system = $7) \
         ORDER BY m.url, e.{to}_code"
    );
    let mut out = Output::default();
    let mut matches = Vec::new();
    for (coding, _) in &codings {
        let code = coding.code.clone().unwrap_or_default();
        let rows = tx
            .query(
                &statement,
                &[
                    &tenant,
                    &code,
                    &coding.system,
                    &url,
                    &source,
                    &target,
                    &target_system,
                ],
            )
            .await?;
        for row in rows {
            let (map_url, system, code, display, equivalence, comment): (
                String,
                String,
                Option<String>,
                Option<String>,
                String,
                Option<String>,
            ) = (
                row.get(0),
                row.get(1),
                row.get(2),
                row.get(3),
                row.get(4),
                row.get(5),
            );
            matches.push((map_url, system, code, display, equivalence, comment));
        }
    }
    let positive = matches
        .iter()
        .any(|m| !matches!(m.4.as_str(), "unmatched" | "disjoint"));
    out.add("result", "valueBoolean", json!(positive));
    if !positive {
        let what = codings
            .iter()
            .map(|(c, _)| {
                format!(
                    "{}#{}",
                    c.system.as_deref().unwrap_or(""),
                    c.code.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        out.add(
            "message",
            "valueString",
            json!(format!("no mapping found for {what}")),
        );
    }
    for (map_url, system, code, display, equivalence, comment) in matches {
        let mut parts = Output::default();
        parts.add("equivalence", "valueCode", json!(equivalence));
        if let Some(code) = code {
            let mut concept = json!({"system": system, "code": code});
            if let Some(d) = display {
                concept["display"] = json!(d);
            }
            parts.add("concept", "valueCoding", concept);
        }
        parts.add("source", "valueUri", json!(map_url));
        if let Some(c) = comment {
            parts.add("comment", "valueString", json!(c));
        }
        out.part("match", parts);
    }
    Ok(out.into_parameters())
}
