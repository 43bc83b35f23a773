//! Chained parameters (search.html#chaining) and reverse chaining with
//! `_has` (search.html#has): both parse the rest of the name against the
//! other resource type, recursively.

use super::{Clause, Criteria, ParamKind, Problem, Registry, parse_param};
use crate::error::ApiError;
use fhir::ResourceType;

/// `ref[:Type].rest=value`: the reference's targets (the `:Type` one, or
/// every target type for which `rest` is a parameter) must match `rest`.
pub(super) fn parse_chain(
    registry: &Registry,
    resource_type: &str,
    head: &str,
    rest: &str,
    value: &str,
    local_base: &str,
) -> Result<Clause, Problem> {
    let (code, type_modifier) = match head.split_once(':') {
        Some((c, m)) => (c, Some(m)),
        None => (head, None),
    };
    let param = registry
        .param(resource_type, code)
        .filter(|p| p.kind == ParamKind::Reference)
        .ok_or_else(|| {
            Problem::Unsupported(format!(
                "{code} is not a reference parameter of {resource_type}, so it cannot be chained"
            ))
        })?;
    let candidates: Vec<String> = match type_modifier {
        Some(t) => {
            let known = ResourceType::parse(t).is_some()
                && (param.targets.is_empty() || param.targets.iter().any(|x| x == t));
            if !known {
                return Err(Problem::Unsupported(format!(
                    "{code} of {resource_type} cannot refer to {t}"
                )));
            }
            vec![t.to_owned()]
        }
        None => param.targets.iter().cloned().collect(),
    };
    let mut targets = Vec::new();
    let mut first_problem = None;
    for target in candidates {
        match parse_param(registry, &target, rest, value, local_base) {
            Ok(clause) => targets.push((
                target,
                Criteria {
                    clauses: vec![clause],
                },
            )),
            Err(Problem::Invalid(e)) => return Err(Problem::Invalid(e)),
            Err(p) => {
                first_problem.get_or_insert(p);
            }
        }
    }
    if targets.is_empty() {
        return Err(first_problem.unwrap_or_else(|| {
            Problem::Unsupported(format!("{code} of {resource_type} has no target types"))
        }));
    }
    Ok(Clause::Chain {
        param: code.to_owned(),
        targets,
    })
}

/// `_has:Type:param:rest=value` (rest may itself be `_has:...`).
pub(super) fn parse_has(
    registry: &Registry,
    resource_type: &str,
    name: &str,
    rest: &str,
    value: &str,
    local_base: &str,
) -> Result<Clause, Problem> {
    let mut parts = rest.splitn(3, ':');
    let (Some(source), Some(code), Some(inner_name)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ApiError::invalid(format!(
            "{name} must have the form _has:Type:reference:parameter"
        ))
        .into());
    };
    let Some(source_type) = ResourceType::parse(source) else {
        return Err(ApiError::invalid(format!("{source} in {name} is not a resource type")).into());
    };
    let refers = registry
        .param(source_type.as_str(), code)
        .filter(|p| p.kind == ParamKind::Reference)
        .is_some_and(|p| p.targets.is_empty() || p.targets.iter().any(|t| t == resource_type));
    if !refers {
        return Err(Problem::Unsupported(format!(
            "{source}:{code} is not a reference parameter that can refer to {resource_type}"
        )));
    }
    let clause = parse_param(
        registry,
        source_type.as_str(),
        inner_name,
        value,
        local_base,
    )?;
    Ok(Clause::Has {
        source_type: source_type.as_str().to_owned(),
        param: code.to_owned(),
        inner: Criteria {
            clauses: vec![clause],
        },
    })
}
