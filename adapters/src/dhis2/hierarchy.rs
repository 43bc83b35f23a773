//! Checks the organisation unit hierarchy of one payload before anything is
//! mapped: ids present and unique, `path` agreeing with `parent` and
//! `level`, every parent either in the payload or already known, no parent
//! loops. A unit that fails is left out with a per-record error, and so are
//! the units below it (their `partOf` would point at nothing).

use super::config::is_uid;
use super::fields;
use crate::output::RecordError;
use fhir::IssueCode;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// A unit that passed: where it is in the payload and where it hangs.
#[derive(Debug, Clone)]
pub struct Placed<'a> {
    pub index: usize,
    pub uid: String,
    pub parent: Option<String>,
    pub level: u32,
    pub unit: &'a Value,
}

/// A unit as read, before its parent is checked.
struct Read<'a> {
    index: usize,
    uid: String,
    parent: Option<String>,
    level: Option<u32>,
    unit: &'a Value,
}

/// Orders the units parents first; returns the ones that passed and the
/// errors of the others.
pub fn place<'a>(
    units: &'a [Value],
    known: &HashSet<String>,
) -> (Vec<Placed<'a>>, Vec<RecordError>) {
    let mut errors = Vec::new();
    let mut read: Vec<Read<'a>> = Vec::new();
    let mut first_at: HashMap<String, usize> = HashMap::new();
    for (index, unit) in units.iter().enumerate() {
        match read_unit(index, unit) {
            Ok(found) => {
                if let Some(first) = first_at.get(&found.uid) {
                    errors.push(
                        RecordError::error(
                            Some(&found.uid),
                            &format!("organisationUnits[{index}].id"),
                            format!(
                                "duplicate organisation unit id {} (first at organisationUnits[{first}]); \
                                 this copy is left out",
                                found.uid
                            ),
                        )
                        .with_code(IssueCode::Duplicate),
                    );
                    continue;
                }
                first_at.insert(found.uid.clone(), read.len());
                read.push(found);
            }
            Err(error) => errors.push(error),
        }
    }
    let by_uid: HashMap<&str, usize> = read
        .iter()
        .enumerate()
        .map(|(position, unit)| (unit.uid.as_str(), position))
        .collect();
    let mut verdict: Vec<Option<Result<u32, String>>> = vec![None; read.len()];
    mark_cycles(&read, &by_uid, &mut verdict);
    for position in 0..read.len() {
        resolve(position, &read, &by_uid, known, &mut verdict);
    }
    let mut placed = Vec::new();
    for (unit, verdict) in read.iter().zip(verdict) {
        match verdict {
            Some(Ok(level)) => placed.push(Placed {
                index: unit.index,
                uid: unit.uid.clone(),
                parent: unit.parent.clone(),
                level,
                unit: unit.unit,
            }),
            Some(Err(message)) => {
                errors.push(
                    RecordError::error(
                        Some(&unit.uid),
                        &format!("organisationUnits[{}]", unit.index),
                        message,
                    )
                    .with_code(IssueCode::BusinessRule),
                );
            }
            None => {}
        }
    }
    placed.sort_by_key(|unit| (unit.level, unit.index));
    errors.sort_by_key(|error| payload_index(&error.path));
    (placed, errors)
}

/// The index in `organisationUnits[N]...`, to report errors in payload order.
fn payload_index(path: &str) -> usize {
    path.split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .and_then(|(digits, _)| digits.parse().ok())
        .unwrap_or(usize::MAX)
}

/// Reads id, parent, path and level, and checks that they agree.
fn read_unit(index: usize, unit: &Value) -> Result<Read<'_>, RecordError> {
    let at = |field: &str| format!("organisationUnits[{index}]{field}");
    let uid = fields::text(unit, &["id"])
        .ok_or_else(|| RecordError::error(None, &at(""), "organisation unit without an id"))?;
    if !is_uid(&uid) {
        return Err(RecordError::error(
            Some(&uid),
            &at(".id"),
            format!("{uid:?} is not a DHIS2 uid"),
        ));
    }
    let fail =
        |field: &str, message: String| Err(RecordError::error(Some(&uid), &at(field), message));
    let parent = match unit.get("parent") {
        None | Some(Value::Null) => None,
        Some(parent) => match fields::text(parent, &["id"]) {
            Some(id) if is_uid(&id) => Some(id),
            _ => return fail(".parent", "parent has no valid DHIS2 uid in `id`".into()),
        },
    };
    let path = fields::text(unit, &["path"]);
    let path_ids: Option<Vec<&str>> = match path.as_deref() {
        None => None,
        Some(path) => match path.strip_prefix('/') {
            Some(rest) if rest.split('/').all(is_uid) => Some(rest.split('/').collect()),
            _ => return fail(".path", format!("path {path:?} is not /uid/uid/...")),
        },
    };
    let level = match unit.get("level") {
        None | Some(Value::Null) => None,
        Some(level) => match level.as_u64().and_then(|l| u32::try_from(l).ok()) {
            Some(level) if level >= 1 => Some(level),
            _ => return fail(".level", format!("level {level} is not a positive integer")),
        },
    };
    let mut parent = parent;
    if let Some(ids) = &path_ids {
        let shown = path.as_deref().unwrap_or_default();
        if ids.last() != Some(&uid.as_str()) {
            return fail(
                ".path",
                format!("path {shown:?} does not end with the unit's own id"),
            );
        }
        let mut seen = HashSet::new();
        if let Some(repeated) = ids.iter().find(|id| !seen.insert(**id)) {
            return fail(
                ".path",
                format!("cycle in the hierarchy: path {shown:?} passes through {repeated} twice"),
            );
        }
        let path_parent = ids.len().checked_sub(2).map(|i| ids[i].to_owned());
        if parent.is_some() && parent != path_parent {
            return fail(
                ".path",
                format!(
                    "cycle or inconsistency in the hierarchy: path {shown:?} disagrees with parent {}",
                    parent.as_deref().unwrap_or_default()
                ),
            );
        }
        parent = parent.or(path_parent);
        let depth = u32::try_from(ids.len()).unwrap_or(u32::MAX);
        if level.is_some_and(|level| level != depth) {
            return fail(
                ".level",
                format!(
                    "level {} disagrees with path {shown:?} (depth {depth})",
                    level.unwrap_or(0)
                ),
            );
        }
    }
    Ok(Read {
        index,
        uid,
        parent,
        level: level.or(path_ids.map(|ids| u32::try_from(ids.len()).unwrap_or(u32::MAX))),
        unit,
    })
}

/// Finds parent loops inside the payload and rejects every unit on one.
fn mark_cycles(
    read: &[Read<'_>],
    by_uid: &HashMap<&str, usize>,
    verdict: &mut [Option<Result<u32, String>>],
) {
    // 0 = unvisited, 1 = on the current walk, 2 = done.
    let mut state = vec![0u8; read.len()];
    for start in 0..read.len() {
        let mut walk = Vec::new();
        let mut current = Some(start);
        while let Some(position) = current {
            match state[position] {
                2 => break,
                1 => {
                    let from = walk.iter().position(|p| *p == position).unwrap_or(0);
                    let cycle: Vec<&str> = walk[from..]
                        .iter()
                        .map(|p: &usize| read[*p].uid.as_str())
                        .collect();
                    for member in &walk[from..] {
                        verdict[*member] = Some(Err(format!(
                            "cycle in the hierarchy: {} → {}",
                            cycle.join(" → "),
                            cycle[0]
                        )));
                    }
                    break;
                }
                _ => {
                    state[position] = 1;
                    walk.push(position);
                    current = read[position]
                        .parent
                        .as_deref()
                        .and_then(|parent| by_uid.get(parent).copied());
                }
            }
        }
        for position in walk {
            state[position] = 2;
        }
    }
}

/// Decides the unit at `position` and every unit above it that is still
/// open: walks up to a decided unit, a root or a parent outside the
/// payload, then decides on the way down. Cycles were marked before, so the
/// walk ends.
fn resolve(
    position: usize,
    read: &[Read<'_>],
    by_uid: &HashMap<&str, usize>,
    known: &HashSet<String>,
    verdict: &mut [Option<Result<u32, String>>],
) {
    let mut chain = vec![position];
    let mut above: Option<Result<u32, String>> = None;
    while let Some(&top) = chain.last() {
        if let Some(done) = &verdict[top] {
            above = Some(done.clone());
            chain.pop();
            break;
        }
        match read[top]
            .parent
            .as_deref()
            .and_then(|parent| by_uid.get(parent))
        {
            Some(&parent_position) => chain.push(parent_position),
            None => break,
        }
    }
    for &open in chain.iter().rev() {
        let unit = &read[open];
        let result = match (unit.parent.as_deref(), &above) {
            (None, _) => Ok(unit.level.unwrap_or(1)),
            (Some(parent), Some(Ok(parent_level))) => match unit.level {
                Some(level) if level != parent_level + 1 => Err(format!(
                    "level {level} is not one below its parent {parent} (level {parent_level})"
                )),
                _ => Ok(parent_level + 1),
            },
            (Some(parent), Some(Err(_))) => Err(format!(
                "parent {parent} was rejected, so this unit is left out too"
            )),
            (Some(parent), None) if known.contains(parent) => unit.level.ok_or_else(|| {
                format!("parent {parent} is known but the unit has no level or path")
            }),
            (Some(parent), None) => Err(format!(
                "missing parent: {parent} is neither in this payload nor already known"
            )),
        };
        verdict[open] = Some(result.clone());
        above = Some(result);
    }
}
