//! `_include` and `_revinclude` (search.html#include): the resources a
//! page's matches refer to, and the resources that refer to them, with
//! `:iterate` repeating over what was included. Each resource appears once
//! (matches are never repeated as includes), and iteration stops when a
//! round adds nothing or the include limit is reached, so reference cycles
//! end.

mod direct;

use super::registry::{ParamKind, R4_DEFINITIONS, Registry};
use crate::error::ApiError;
use crate::store::{Db, Stored, TenantCtx, read};
use fhir::ResourceType;
use std::collections::HashSet;

/// One `_include` or `_revinclude` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// Reverse: resources of `source` referring to the page.
    pub reverse: bool,
    pub iterate: bool,
    /// The resource type holding the reference; None for `*`.
    pub source: Option<String>,
    /// The reference parameter; None for `*` (every reference parameter).
    pub param: Option<String>,
    /// The optional third part: only targets of this type.
    pub target: Option<String>,
    /// For a forward include through an R4 parameter whose expression is
    /// one element of the source (`Observation.performer`): that element,
    /// whose references can be read from the matches themselves
    /// ([`direct`]).
    pub element: Option<String>,
}

/// Parses `_include[:iterate]=Source:param[:Target]` or `*`.
pub fn parse_include(registry: &Registry, name: &str, value: &str) -> Result<Include, ApiError> {
    let (base, modifier) = match name.split_once(':') {
        Some((b, m)) => (b, Some(m)),
        None => (name, None),
    };
    let iterate = match modifier {
        None => false,
        // `:recurse` is the STU3 spelling.
        Some("iterate" | "recurse") => true,
        Some(m) => {
            return Err(ApiError::invalid(format!("{base} has no modifier :{m}")).at(name));
        }
    };
    let reverse = base == "_revinclude";
    if value == "*" {
        return Ok(Include {
            reverse,
            iterate,
            source: None,
            param: None,
            target: None,
            element: None,
        });
    }
    let bad = |why: &str| ApiError::invalid(format!("{name}={value}: {why}")).at(name);
    let parts: Vec<&str> = value.split(':').collect();
    let (source, param, target) = match parts.as_slice() {
        [s, p] => (*s, *p, None),
        [s, p, t] => (*s, *p, Some(*t)),
        _ => return Err(bad("expected SourceType:parameter[:TargetType]")),
    };
    if ResourceType::parse(source).is_none() {
        return Err(bad("the source is not a resource type"));
    }
    if target.is_some_and(|t| ResourceType::parse(t).is_none()) {
        return Err(bad("the target is not a resource type"));
    }
    let (param, element) = if param == "*" {
        (None, None)
    } else {
        let Some(definition) = registry
            .param(source, param)
            .filter(|p| p.kind == ParamKind::Reference)
        else {
            return Err(bad("not a reference parameter of the source type"));
        };
        let element = definition
            .url
            .starts_with(R4_DEFINITIONS)
            .then(|| definition.expression.top_element(source))
            .flatten()
            .filter(|_| !reverse)
            .map(str::to_owned);
        (Some(param.to_owned()), element)
    };
    Ok(Include {
        reverse,
        iterate,
        source: Some(source.to_owned()),
        param,
        target: target.map(str::to_owned),
        element,
    })
}

/// The included resources for a page of `matches`, at most `limit`;
/// the flag says whether the limit cut the result short.
///
/// Each round costs one round trip to the database: the targets of the
/// forward includes read from the resources themselves ([`direct`]) are
/// fetched in the same pipeline as the statements of the others, each of
/// which finds its resources and reads their latest versions at once.
pub async fn resolve(
    db: &impl Db,
    ctx: &TenantCtx,
    includes: &[Include],
    matches: &[Stored],
    limit: usize,
) -> Result<(Vec<Stored>, bool), tokio_postgres::Error> {
    let mut seen: HashSet<(String, String)> = matches
        .iter()
        .map(|s| (s.resource_type.clone(), s.id.clone()))
        .collect();
    let mut included: Vec<Stored> = Vec::new();
    // The resources the next round starts from: the matches, then what
    // the last round included.
    let mut frontier: Option<std::ops::Range<usize>> = None;
    let mut first_round = true;
    loop {
        let from = match &frontier {
            None => matches,
            Some(range) => &included[range.clone()],
        };
        if from.is_empty() {
            break;
        }
        let round: Vec<&Include> = includes
            .iter()
            .filter(|inc| first_round || inc.iterate)
            .collect();
        if round.is_empty() {
            break;
        }
        let mut targets: Vec<(String, String)> = Vec::new();
        let mut through_index: Vec<&Include> = Vec::new();
        for include in round {
            match direct::targets(include, from) {
                Some(found) => targets.extend(found),
                None => through_index.push(include),
            }
        }
        targets.retain(|key| seen.insert(key.clone()));
        let (direct, indexed) = tokio::join!(
            read::read_many(db, ctx, &targets),
            futures_util::future::try_join_all(
                through_index
                    .iter()
                    .map(|include| step(db, ctx, include, from))
            ),
        );
        let mut found = direct?;
        for stored in indexed?.into_iter().flatten() {
            if seen.insert((stored.resource_type.clone(), stored.id.clone())) {
                found.push(stored);
            }
        }
        if included.len() + found.len() > limit {
            found.truncate(limit.saturating_sub(included.len()));
            included.extend(found);
            return Ok((included, true));
        }
        let start = included.len();
        included.extend(found);
        frontier = Some(start..included.len());
        first_round = false;
    }
    Ok((included, false))
}

/// One include over `from` through the reference index: the current
/// versions of the resources it reaches (any of them may already be on
/// the page; the caller drops those).
async fn step(
    db: &impl Db,
    ctx: &TenantCtx,
    include: &Include,
    from: &[Stored],
) -> Result<Vec<Stored>, tokio_postgres::Error> {
    let (types, ids): (Vec<&str>, Vec<&str>) = from
        .iter()
        .map(|s| (s.resource_type.as_str(), s.id.as_str()))
        .unzip();
    let source = include.source.as_deref();
    let param = include.param.as_deref();
    let target = include.target.as_deref();
    let sql = if include.reverse {
        // Resources of `source` whose `param` points at one of `from`.
        REVERSE
    } else {
        // What `from` resources of `source` point at through `param`.
        FORWARD
    };
    let rows = db
        .query_generic(sql, &[&ctx.tenant, &types, &ids, &source, &param, &target])
        .await?;
    Ok(rows.iter().map(read::current_row).collect())
}

/// The latest version of each `f.res_type`/`f.res_id` that has content:
/// the current one, as in `read::read_many`.
macro_rules! with_latest {
    ($found:literal) => {
        concat!(
            "SELECT f.res_type, f.res_id, h.version_id, h.last_updated, h.content::text FROM (",
            $found,
            ") f JOIN LATERAL (SELECT h.version_id, h.last_updated, h.content \
             FROM resource_history h WHERE h.tenant = $1 AND h.res_type = f.res_type \
             AND h.id = f.res_id ORDER BY h.version_id DESC LIMIT 1) h ON h.content IS NOT NULL"
        )
    };
}

const REVERSE: &str = with_latest!(
    "SELECT DISTINCT x.res_type, x.res_id FROM search_reference x \
     JOIN unnest($2::text[], $3::text[]) AS k(res_type, id) \
       ON x.target_type = k.res_type AND x.target_id = k.id \
     WHERE x.tenant = $1 AND ($4::text IS NULL OR x.res_type = $4) \
       AND ($5::text IS NULL OR x.param = $5) \
       AND ($6::text IS NULL OR x.target_type = $6)"
);

const FORWARD: &str = with_latest!(
    "SELECT DISTINCT x.target_type AS res_type, x.target_id AS res_id FROM search_reference x \
     JOIN unnest($2::text[], $3::text[]) AS k(res_type, id) \
       ON x.res_type = k.res_type AND x.res_id = k.id \
     WHERE x.tenant = $1 AND x.target_id IS NOT NULL \
       AND ($4::text IS NULL OR x.res_type = $4) \
       AND ($5::text IS NULL OR x.param = $5) \
       AND ($6::text IS NULL OR x.target_type = $6)"
);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn include_values() {
        let inc = parse_include(
            Registry::global(),
            "_include",
            "Observation:performer:Practitioner",
        )
        .unwrap();
        assert_eq!(inc.source.as_deref(), Some("Observation"));
        assert_eq!(inc.param.as_deref(), Some("performer"));
        assert_eq!(inc.target.as_deref(), Some("Practitioner"));
        assert!(!inc.reverse && !inc.iterate);
        let rev = parse_include(
            Registry::global(),
            "_revinclude:iterate",
            "Provenance:target",
        )
        .unwrap();
        assert!(rev.reverse && rev.iterate);
        assert_eq!(
            parse_include(Registry::global(), "_include", "*")
                .unwrap()
                .param,
            None
        );
        assert_eq!(
            parse_include(Registry::global(), "_include", "Observation:*")
                .unwrap()
                .param,
            None
        );
        for bad in [
            "Observation",
            "Observation:code",
            "Nope:subject",
            "Observation:subject:Nope",
        ] {
            let e = parse_include(Registry::global(), "_include", bad).unwrap_err();
            assert_eq!(
                e.issues[0].expression,
                vec!["_include".to_string()],
                "{bad}"
            );
        }
        assert!(
            parse_include(Registry::global(), "_include:bogus", "Observation:subject").is_err()
        );
    }
}
