//! `ConceptMap/$translate` (conceptmap-operation-translate): the mappings
//! matched by source code (and system, map url, source and target value
//! sets, target system), or by target with `reverse`; from the stored maps,
//! or from a map given inline in the request (`conceptMap`).

use super::input_codings;
use crate::concept_map::{MapEntry, entries, scope};
use crate::params::{Coding, Output, Params};
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

/// What narrows the mappings, besides the coding.
struct Narrowing<'p> {
    reverse: bool,
    url: Option<String>,
    source: Option<&'p str>,
    target: Option<&'p str>,
    target_system: Option<&'p str>,
}

/// One match: map url, system, code, display, equivalence, comment.
type Match = (
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
);

pub async fn concept_map_translate(
    tx: &Tx<'_>,
    tenant: &str,
    params: &Params,
    instance: Option<&Value>,
) -> Result<Value, TermError> {
    params.only(KNOWN)?;
    let codings = input_codings(params, "system", "version")?;
    let inline = params.json("conceptMap")?;
    if let Some((map, at)) = inline {
        if map.get("resourceType").and_then(Value::as_str) != Some("ConceptMap") {
            return Err(TermError::invalid("conceptMap must be a ConceptMap resource").at(at));
        }
        if instance.is_some() || params.get("url").is_some() {
            return Err(TermError::invalid(
                "give the concept map inline (conceptMap) or name it (url or the instance), not both",
            )
            .at(at));
        }
    }
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
    let narrowing = Narrowing {
        reverse: params.bool("reverse")?.unwrap_or(false),
        url,
        source: params.str("source")?,
        target: params.str("target")?,
        target_system: params.str("targetsystem")?,
    };
    let mut matches = Vec::new();
    for (coding, _) in &codings {
        match inline {
            Some((map, _)) => matches.extend(in_map(map, coding, &narrowing)),
            None => matches.extend(stored(tx, tenant, coding, &narrowing).await?),
        }
    }
    Ok(render(&codings, matches))
}

/// The matches of `coding` in the stored maps.
async fn stored(
    tx: &Tx<'_>,
    tenant: &str,
    coding: &Coding,
    n: &Narrowing<'_>,
) -> Result<Vec<Match>, TermError> {
    let (from, to) = if n.reverse {
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
    let code = coding.code.clone().unwrap_or_default();
    let rows = tx
        .query(
            &statement,
            &[
                &tenant,
                &code,
                &coding.system,
                &n.url,
                &n.source,
                &n.target,
                &n.target_system,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            (
                Some(row.get(0)),
                row.get(1),
                row.get(2),
                row.get(3),
                row.get(4),
                row.get(5),
            )
        })
        .collect())
}

/// The matches of `coding` in a map given inline: the same conditions as
/// for stored maps, in the map's order.
fn in_map(map: &Value, coding: &Coding, n: &Narrowing<'_>) -> Vec<Match> {
    let (map_source, map_target) = scope(map);
    let (map_from, map_to) = if n.reverse {
        (map_target, map_source)
    } else {
        (map_source, map_target)
    };
    if n.source.is_some_and(|s| map_from.as_deref() != Some(s))
        || n.target.is_some_and(|t| map_to.as_deref() != Some(t))
    {
        return Vec::new();
    }
    let map_url = map.get("url").and_then(Value::as_str).map(str::to_owned);
    let sides = |e: MapEntry| {
        if n.reverse {
            (
                (e.target_system, e.target_code),
                (e.source_system, Some(e.source_code), e.source_display),
                e.equivalence,
                e.comment,
            )
        } else {
            (
                (e.source_system, Some(e.source_code)),
                (e.target_system, e.target_code, e.target_display),
                e.equivalence,
                e.comment,
            )
        }
    };
    entries(map)
        .into_iter()
        .map(sides)
        .filter(|((system, code), (to_system, ..), ..)| {
            code.is_some()
                && *code == coding.code
                && coding.system.as_ref().is_none_or(|s| s == system)
                && n.target_system.is_none_or(|t| t == to_system)
        })
        .map(|(_, (system, code, display), equivalence, comment)| {
            (map_url.clone(), system, code, display, equivalence, comment)
        })
        .collect()
}

fn render(codings: &[(Coding, String)], matches: Vec<Match>) -> Value {
    let mut out = Output::default();
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
        if let Some(url) = map_url {
            parts.add("source", "valueUri", json!(url));
        }
        if let Some(c) = comment {
            parts.add("comment", "valueString", json!(c));
        }
        out.part("match", parts);
    }
    out.into_parameters()
}
