//! `CodeSystem/$lookup` (codesystem-operation-lookup) and `$subsumes`
//! (codesystem-operation-subsumes).

use crate::params::{Coding, Output, Params};
use crate::store::{CodeSystemRow, ConceptRow, find_concept, require_system};
use crate::{TermError, Tx};
use serde_json::{Value, json};

const LOOKUP_PARAMS: &[&str] = &[
    "code",
    "system",
    "version",
    "coding",
    "date",
    "displayLanguage",
    "property",
];
const SUBSUMES_PARAMS: &[&str] = &["codeA", "codeB", "system", "version", "codingA", "codingB"];

/// The system (from the instance, `system` or the coding) and the coding.
fn system_and_coding(
    params: &Params,
    instance: Option<&Value>,
) -> Result<(String, String, Coding), TermError> {
    let (mut coding, at) = match params.json("coding")? {
        Some((c, at)) => (Coding::from_json(c), at.to_owned()),
        None => {
            let Some((code, at)) = params.text("code")? else {
                return Err(TermError::invalid("give code and system, or coding").at("code"));
            };
            (
                Coding {
                    code: Some(code.to_owned()),
                    system: params.str("system")?.map(str::to_owned),
                    ..Coding::default()
                },
                at.to_owned(),
            )
        }
    };
    if let Some(url) = instance
        .and_then(|cs| cs.get("url"))
        .and_then(Value::as_str)
    {
        coding.system = Some(url.to_owned());
    }
    let Some(system) = coding.system.clone() else {
        return Err(TermError::invalid("name the code system with system").at("system"));
    };
    let system_at = if params.get("system").is_some() {
        "system".to_owned()
    } else {
        at.clone()
    };
    Ok((system, system_at, coding))
}

pub async fn code_system_lookup(
    tx: &Tx<'_>,
    tenant: &str,
    params: &Params,
    instance: Option<&Value>,
) -> Result<Value, TermError> {
    params.only(LOOKUP_PARAMS)?;
    let (system, system_at, coding) = system_and_coding(params, instance)?;
    let version = params.str("version")?;
    let cs = require_system(tx, tenant, &system, version)
        .await
        .map_err(|e| e.at(system_at))?;
    let code = coding.code.unwrap_or_default();
    let code_at = if params.get("code").is_some() {
        "code"
    } else {
        "coding"
    };
    let Some(concept) = find_concept(tx, &cs, &code).await? else {
        return Err(TermError::not_found(format!(
            "unknown code {code:?} in the code system {system}"
        ))
        .at(code_at));
    };
    let wanted = params.all_text("property");
    let wants = |p: &str| wanted.is_empty() || wanted.contains(&p);
    let language = params.str("displayLanguage")?;
    let mut out = Output::default();
    out.add(
        "name",
        "valueString",
        json!(cs.name.clone().unwrap_or_else(|| system.clone())),
    );
    if !cs.version.is_empty() {
        out.add("version", "valueString", json!(cs.version));
    }
    let designations = designations(tx, &cs, concept.concept_id).await?;
    let localized = language.and_then(|lang| {
        designations.iter().find(|(l, ..)| {
            l.as_deref()
                .is_some_and(|l| l == lang || l.starts_with(&format!("{lang}-")))
        })
    });
    match (localized, &concept.display) {
        (Some((_, _, value)), _) => out.add("display", "valueString", json!(value)),
        (None, Some(d)) => out.add("display", "valueString", json!(d)),
        (None, None) => out.add("display", "valueString", json!(code)),
    };
    if let (Some(def), true) = (&concept.definition, wants("definition")) {
        out.add("definition", "valueString", json!(def));
    }
    if wants("designation") {
        for (language, use_, value) in &designations {
            let mut parts = Output::default();
            if let Some(l) = language {
                parts.add("language", "valueCode", json!(l));
            }
            if let Some((s, c)) = use_ {
                parts.add("use", "valueCoding", json!({"system": s, "code": c}));
            }
            parts.add("value", "valueString", json!(value));
            out.part("designation", parts);
        }
    }
    for (name, key, value) in properties(tx, &cs, &concept).await? {
        if wants(&name) {
            let mut parts = Output::default();
            parts.add("code", "valueCode", json!(name));
            parts.add("value", key, value);
            out.part("property", parts);
        }
    }
    Ok(out.into_parameters())
}

async fn designations(
    tx: &Tx<'_>,
    cs: &CodeSystemRow,
    concept_id: i32,
) -> Result<Vec<(Option<String>, Option<(String, String)>, String)>, TermError> {
    let rows = tx
        .query(
            "SELECT language, use_system, use_code, value FROM term_designations \
             WHERE tenant = $1 AND system_id = $2 AND concept_id = $3 ORDER BY preferred DESC, language",
            &[&cs.tenant, &cs.id, &concept_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let use_ = match (r.get::<_, Option<String>>(1), r.get::<_, Option<String>>(2)) {
                (Some(s), Some(c)) => Some((s, c)),
                _ => None,
            };
            (r.get(0), use_, r.get(3))
        })
        .collect())
}

/// The concept's properties (for SNOMED CT also its attributes: the
/// attribute's id and the destination's code), its parents and children,
/// and `inactive`.
async fn properties(
    tx: &Tx<'_>,
    cs: &CodeSystemRow,
    concept: &ConceptRow,
) -> Result<Vec<(String, &'static str, Value)>, TermError> {
    let mut out = Vec::new();
    let rows = tx
        .query(
            "SELECT property, kind, value, value_system FROM term_properties \
             WHERE tenant = $1 AND system_id = $2 AND concept_id = $3",
            &[&cs.tenant, &cs.id, &concept.concept_id],
        )
        .await?;
    for r in rows {
        let (property, kind, value, system): (String, String, String, Option<String>) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        if matches!(property.as_str(), "parent" | "child") {
            continue;
        }
        let (key, v) = match kind.as_str() {
            "code" => ("valueCode", json!(value)),
            "Coding" => ("valueCoding", json!({"system": system, "code": value})),
            "boolean" => ("valueBoolean", json!(value == "true")),
            "integer" => (
                "valueInteger",
                value
                    .parse::<i64>()
                    .map(|i| json!(i))
                    .unwrap_or(json!(value)),
            ),
            "dateTime" => ("valueDateTime", json!(value)),
            "decimal" => (
                "valueDecimal",
                serde_json::from_str(&value).unwrap_or(json!(value)),
            ),
            _ => ("valueString", json!(value)),
        };
        // A SNOMED CT attribute repeated in several role groups is one
        // property value.
        if !out
            .iter()
            .any(|(p, k, x)| *p == property && *k == key && *x == v)
        {
            out.push((property, key, v));
        }
    }
    for (name, sql) in [
        (
            "parent",
            "SELECT c.code FROM term_edges e JOIN term_concepts c ON c.tenant = e.tenant AND c.system_id = e.system_id AND c.concept_id = e.parent WHERE e.tenant = $1 AND e.system_id = $2 AND e.child = $3 ORDER BY 1",
        ),
        (
            "child",
            "SELECT c.code FROM term_edges e JOIN term_concepts c ON c.tenant = e.tenant AND c.system_id = e.system_id AND c.concept_id = e.child WHERE e.tenant = $1 AND e.system_id = $2 AND e.parent = $3 ORDER BY 1",
        ),
    ] {
        for r in tx
            .query(sql, &[&cs.tenant, &cs.id, &concept.concept_id])
            .await?
        {
            out.push((name.to_owned(), "valueCode", json!(r.get::<_, String>(0))));
        }
    }
    out.push((
        "inactive".to_owned(),
        "valueBoolean",
        json!(!concept.active),
    ));
    Ok(out)
}

pub async fn code_system_subsumes(
    tx: &Tx<'_>,
    tenant: &str,
    params: &Params,
    instance: Option<&Value>,
) -> Result<Value, TermError> {
    params.only(SUBSUMES_PARAMS)?;
    let side = |code: &str, coding: &str| -> Result<(Coding, String), TermError> {
        if let Some((c, at)) = params.json(coding)? {
            return Ok((Coding::from_json(c), at.to_owned()));
        }
        match params.text(code)? {
            Some((c, at)) => Ok((
                Coding {
                    code: Some(c.to_owned()),
                    ..Coding::default()
                },
                at.to_owned(),
            )),
            None => Err(TermError::invalid(format!("give {code} or {coding}")).at(code)),
        }
    };
    let (a, a_at) = side("codeA", "codingA")?;
    let (b, b_at) = side("codeB", "codingB")?;
    let system = instance
        .and_then(|cs| cs.get("url"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or(params.str("system")?.map(str::to_owned))
        .or(a.system.clone())
        .ok_or_else(|| TermError::invalid("name the code system with system").at("system"))?;
    for (coding, at) in [(&a, &a_at), (&b, &b_at)] {
        if coding.system.as_deref().is_some_and(|s| s != system) {
            return Err(TermError::invalid(format!(
                "the coding's system {:?} differs from {system}",
                coding.system.as_deref().unwrap_or("")
            ))
            .at(at));
        }
    }
    let version = params.str("version")?;
    // One statement, one round trip: the code system (as `find_system`
    // chooses it), both concepts and the closure rows between them.
    let (code_a, code_b) = (
        a.code.clone().unwrap_or_default(),
        b.code.clone().unwrap_or_default(),
    );
    let row = tx
        .query_one(
            "WITH cs AS (SELECT tenant, id FROM term_code_systems \
                 WHERE tenant IN ($1, '') AND url = $2 AND ($3::text IS NULL OR version = $3) \
                 ORDER BY (tenant = $1) DESC, is_current DESC, loaded_at DESC LIMIT 1), \
             a AS (SELECT c.concept_id FROM term_concepts c JOIN cs ON c.tenant = cs.tenant \
                 AND c.system_id = cs.id WHERE c.code = $4), \
             b AS (SELECT c.concept_id FROM term_concepts c JOIN cs ON c.tenant = cs.tenant \
                 AND c.system_id = cs.id WHERE c.code = $5) \
             SELECT (SELECT id FROM cs), (SELECT concept_id FROM a), (SELECT concept_id FROM b), \
             EXISTS (SELECT 1 FROM term_closure t JOIN cs ON t.tenant = cs.tenant AND t.system_id = cs.id \
                     WHERE t.ancestor = (SELECT concept_id FROM a) AND t.descendant = (SELECT concept_id FROM b)), \
             EXISTS (SELECT 1 FROM term_closure t JOIN cs ON t.tenant = cs.tenant AND t.system_id = cs.id \
                     WHERE t.ancestor = (SELECT concept_id FROM b) AND t.descendant = (SELECT concept_id FROM a))",
            &[&tenant, &system, &version, &code_a, &code_b],
        )
        .await?;
    if row.get::<_, Option<i64>>(0).is_none() {
        // Not known: the error names what is (one more statement, only here).
        require_system(tx, tenant, &system, version)
            .await
            .map_err(|e| e.at("system"))?;
    }
    let (id_a, id_b): (Option<i32>, Option<i32>) = (row.get(1), row.get(2));
    for (id, code, at) in [(id_a, &code_a, &a_at), (id_b, &code_b, &b_at)] {
        if id.is_none() {
            return Err(TermError::not_found(format!(
                "unknown code {code:?} in the code system {system}"
            ))
            .at(at));
        }
    }
    let (a_over_b, b_over_a): (bool, bool) = (row.get(3), row.get(4));
    let outcome = match (id_a == id_b, a_over_b, b_over_a) {
        (true, _, _) => "equivalent",
        (_, true, _) => "subsumes",
        (_, _, true) => "subsumed-by",
        _ => "not-subsumed",
    };
    let mut out = Output::default();
    out.add("outcome", "valueCode", json!(outcome));
    Ok(out.into_parameters())
}
