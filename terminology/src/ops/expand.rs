//! `ValueSet/$expand` (valueset-operation-expand): the value set by
//! instance, `url` or `valueSet`; the text `filter` ranked (exact, prefix,
//! word prefix, contains; shorter displays first); `offset`/`count` paging
//! with `expansion.total`; `activeOnly`; `includeDesignations` and
//! `displayLanguage`. Expansions are flat, so `excludeNested` is always
//! satisfied.

use super::{Limits, target_value_set};
use crate::expand::{Item, Request, expand};
use crate::params::Params;
use crate::store::find_system;
use crate::{TermError, Tx};
use serde_json::{Map, Value, json};

const KNOWN: &[&str] = &[
    "url",
    "valueSet",
    "valueSetVersion",
    "context",
    "contextDirection",
    "filter",
    "date",
    "offset",
    "count",
    "includeDesignations",
    "designation",
    "includeDefinition",
    "activeOnly",
    "excludeNested",
    "excludeNotForUI",
    "excludePostCoordinated",
    "displayLanguage",
    "limitedExpansion",
];

pub async fn value_set_expand(
    tx: &Tx<'_>,
    tenant: &str,
    params: &Params,
    instance: Option<&Value>,
    limits: Limits,
) -> Result<Value, TermError> {
    params.only(KNOWN)?;
    let offset = params.count("offset")?.unwrap_or(0);
    let count = params.count("count")?;
    let filter = params
        .str("filter")?
        .map(str::trim)
        .filter(|f| !f.is_empty());
    let active_only = params.bool("activeOnly")?.unwrap_or(false);
    let designations = params.bool("includeDesignations")?.unwrap_or(false);
    let language = params.str("displayLanguage")?;
    let (vs, canonical) = target_value_set(tx, tenant, params, instance).await?;
    let request = Request {
        filter: filter.map(str::to_owned),
        active_only,
        only: None,
        limit: if count.is_some() {
            limits.max_paged_expansion
        } else {
            limits.max_expansion
        },
        strict: true,
    };
    let mut stack: Vec<String> = canonical.into_iter().collect();
    // What the value set's content cannot give (an unknown code system or
    // version, a cycle, too many codes) is about the value set named.
    let named_by = ["url", "valueSet"]
        .iter()
        .find_map(|name| params.get(name))
        .map(|p| p.expression.clone());
    let expansion = expand(tx, tenant, &vs, &request, &mut stack)
        .await
        .map_err(|e| match (&named_by, e.kind) {
            (Some(at), crate::error::Kind::Unprocessable) => e.at(at),
            _ => e,
        })?;
    let total = expansion.items.len();
    let page: Vec<Item> = expansion
        .items
        .into_iter()
        .skip(offset)
        .take(count.unwrap_or(usize::MAX))
        .collect();
    let extra = if designations || language.is_some() {
        designations_of(tx, tenant, &page).await?
    } else {
        Default::default()
    };
    let contains: Vec<Value> = page
        .iter()
        .map(|item| {
            let mut c = json!({"system": item.system, "code": item.code});
            if let Some(v) = &item.version {
                c["version"] = json!(v);
            }
            let found = extra.get(&(item.system.clone(), item.code.clone()));
            let localized = language.and_then(|lang| {
                found?.iter().find(|d| {
                    d.language
                        .as_deref()
                        .is_some_and(|l| l == lang || l.starts_with(&format!("{lang}-")))
                })
            });
            match (localized, &item.display) {
                (Some(d), _) => c["display"] = json!(d.value),
                (None, Some(d)) => c["display"] = json!(d),
                _ => {}
            }
            if !item.active {
                c["inactive"] = json!(true);
            }
            if designations {
                if let Some(list) = found.filter(|l| !l.is_empty()) {
                    c["designation"] = list.iter().map(Designation::to_json).collect();
                }
            }
            c
        })
        .collect();
    let mut parameters = Vec::new();
    for (name, value) in [
        ("filter", filter.map(|f| json!({"valueString": f}))),
        ("offset", Some(json!({"valueInteger": offset}))),
        ("count", count.map(|c| json!({"valueInteger": c}))),
        (
            "activeOnly",
            active_only.then(|| json!({"valueBoolean": true})),
        ),
        (
            "includeDesignations",
            designations.then(|| json!({"valueBoolean": true})),
        ),
        ("displayLanguage", language.map(|l| json!({"valueCode": l}))),
    ] {
        if let Some(Value::Object(mut p)) = value {
            p.insert("name".into(), json!(name));
            parameters.push(Value::Object(p));
        }
    }
    for used in &expansion.used {
        parameters.push(json!({"name": "used-codesystem", "valueUri": used}));
    }
    let mut out = Map::new();
    out.insert("resourceType".into(), json!("ValueSet"));
    for key in ["id", "url", "version", "name", "title", "status"] {
        if let Some(v) = vs.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    out.entry("status").or_insert(json!("active"));
    out.insert(
        "expansion".into(),
        json!({
            "identifier": format!("urn:uuid:{}", uuid_like()),
            "timestamp": chrono_now(),
            "total": total,
            "offset": offset,
            "parameter": parameters,
            "contains": contains,
        }),
    );
    Ok(Value::Object(out))
}

#[derive(Debug, Clone)]
pub struct Designation {
    pub language: Option<String>,
    pub use_: Option<(String, String)>,
    pub value: String,
}

impl Designation {
    pub fn to_json(&self) -> Value {
        let mut d = json!({"value": self.value});
        if let Some(l) = &self.language {
            d["language"] = json!(l);
        }
        if let Some((system, code)) = &self.use_ {
            d["use"] = json!({"system": system, "code": code});
        }
        d
    }
}

type DesignationMap = std::collections::HashMap<(String, String), Vec<Designation>>;

/// The designations of the page's codes, by (system, code).
async fn designations_of(
    tx: &Tx<'_>,
    tenant: &str,
    page: &[Item],
) -> Result<DesignationMap, TermError> {
    let mut out = DesignationMap::new();
    let mut systems: Vec<(&str, Option<&str>)> = page
        .iter()
        .map(|i| (i.system.as_str(), i.version.as_deref()))
        .collect();
    systems.sort_unstable();
    systems.dedup();
    for (system, version) in systems {
        let Some(cs) = find_system(tx, tenant, system, version).await? else {
            continue;
        };
        let codes: Vec<&str> = page
            .iter()
            .filter(|i| i.system == system)
            .map(|i| i.code.as_str())
            .collect();
        let rows = tx
            .query(
                "SELECT c.code, d.language, d.use_system, d.use_code, d.value FROM term_designations d \
                 JOIN term_concepts c ON c.tenant = d.tenant AND c.system_id = d.system_id AND c.concept_id = d.concept_id \
                 WHERE d.tenant = $1 AND d.system_id = $2 AND c.code = ANY($3::text[]) ORDER BY d.preferred DESC",
                &[&cs.tenant, &cs.id, &codes],
            )
            .await?;
        for row in rows {
            let use_ = match (
                row.get::<_, Option<String>>(2),
                row.get::<_, Option<String>>(3),
            ) {
                (Some(s), Some(c)) => Some((s, c)),
                _ => None,
            };
            out.entry((system.to_owned(), row.get(0)))
                .or_default()
                .push(Designation {
                    language: row.get(1),
                    use_,
                    value: row.get(4),
                });
        }
    }
    Ok(out)
}

fn chrono_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    fhir_instant(now.as_secs() as i64)
}

/// Seconds since the epoch as a FHIR dateTime (UTC).
fn fhir_instant(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A random-looking identifier for an expansion (not security relevant).
fn uuid_like() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut parts = [0u64; 2];
    for p in &mut parts {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        *p = h.finish();
    }
    let hex = format!("{:016x}{:016x}", parts[0], parts[1]);
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn instants_are_civil_dates() {
        assert_eq!(super::fhir_instant(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::fhir_instant(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
