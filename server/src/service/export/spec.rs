//! What one `$export` job exports, worked out at kick-off from the
//! parameters (export.html#query-parameters) and the caller's rights, and
//! stored with the job (so that a resumed job exports exactly the same):
//! the resource types in order, each with the patients it is narrowed to
//! and its `_typeFilter` queries, `_since`, the integrator whose
//! submissions alone are visible, and de-identification.

use crate::auth::Interaction;
use crate::error::{ApiError, Category};
use crate::search::criteria::{
    self, Alternative, Clause, Cond, Criteria, ReferenceValue, Strictness,
};
use crate::service::authorize::{self, Reach};
use crate::store::TenantCtx;
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The output formats a client may ask for: NDJSON only, under the names
/// the IG requires servers to accept.
const NDJSON_NAMES: &[&str] = &["application/fhir+ndjson", "application/ndjson", "ndjson"];

/// Where the export was invoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// `[base]/$export`
    System,
    /// `[base]/Patient/$export`
    Patient,
    /// `[base]/Group/[id]/$export`
    Group(String),
}

/// One resource type of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypePlan {
    pub res_type: String,
    /// Only the compartments of these patients (`Some(vec![])`: nothing);
    /// `None`: not narrowed to patients (all of the type, or, for a
    /// patient-level export of all patients, see [`Spec::any_patient`]).
    pub patients: Option<Vec<String>>,
    /// `_typeFilter` queries for the type (without `Type?`): a resource is
    /// exported when it matches any of them (all when there are none).
    pub filters: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    pub level: Level,
    pub types: Vec<TypePlan>,
    /// `_since`, as given (an instant).
    pub since: Option<String>,
    /// Patient and Group level without a patient list: resources in the
    /// compartment of any patient.
    pub any_patient: bool,
    /// The caller is this integrator: only its own submissions.
    pub integrator: Option<String>,
    /// HIPAA Safe Harbor de-identification (docs/deidentification.md).
    pub deidentify: bool,
}

/// The kick-off's parameters, from the query and, for POST, a Parameters
/// body.
#[derive(Debug, Default)]
pub struct Params {
    pub output_format: Option<String>,
    pub since: Option<String>,
    pub types: Option<Vec<String>>,
    pub type_filters: Vec<String>,
    pub patients: Option<Vec<String>>,
    pub deidentify: bool,
}

impl Params {
    /// Reads the parameters; unknown ones are refused (export.html: a
    /// server SHOULD refuse parameters it does not support).
    pub fn read(query: &[(String, String)], body: Option<&Value>) -> Result<Params, ApiError> {
        let mut params = Params::default();
        for (name, value) in query {
            if name == "patient" {
                return Err(ApiError::invalid(
                    "patient is a parameter of POST kick-offs only (a Parameters body)",
                )
                .at("patient"));
            }
            params.take(name, value)?;
        }
        if let Some(body) = body {
            if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
                return Err(ApiError::invalid(
                    "a POST kick-off takes a Parameters resource",
                ));
            }
            for (i, parameter) in body["parameter"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let name = parameter["name"].as_str().unwrap_or_default();
                let at = || format!("Parameters.parameter[{i}]");
                if name == "patient" {
                    let reference = parameter["valueReference"]["reference"]
                        .as_str()
                        .ok_or_else(|| {
                            ApiError::invalid("patient takes a valueReference").at(at())
                        })?;
                    let id = reference
                        .strip_prefix("Patient/")
                        .filter(|id| fhir::id::is_valid_id(id))
                        .ok_or_else(|| {
                            ApiError::invalid(format!(
                                "patient {reference:?} is not a reference to a Patient on this server"
                            ))
                            .at(at())
                        })?;
                    params
                        .patients
                        .get_or_insert_with(Vec::new)
                        .push(id.to_owned());
                    continue;
                }
                let value = [
                    "valueString",
                    "valueCode",
                    "valueInstant",
                    "valueBoolean",
                    "valueUri",
                ]
                .iter()
                .find_map(|key| match &parameter[*key] {
                    Value::String(s) => Some(s.clone()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                })
                .ok_or_else(|| {
                    ApiError::invalid(format!("parameter {name:?} has no value")).at(at())
                })?;
                params.take(name, &value).map_err(|e| e.at(at()))?;
            }
        }
        Ok(params)
    }

    fn take(&mut self, name: &str, value: &str) -> Result<(), ApiError> {
        match name {
            "_outputFormat" => {
                // A `+` sent unencoded arrives as a space.
                let format = value.trim().replace(' ', "+");
                if !NDJSON_NAMES.contains(&format.as_str()) {
                    return Err(ApiError::invalid(format!(
                        "_outputFormat {value:?} is not supported: use application/fhir+ndjson"
                    ))
                    .at("_outputFormat"));
                }
                self.output_format = Some(format);
            }
            "_since" => {
                DateTime::parse_from_rfc3339(value.trim()).map_err(|_| {
                    ApiError::invalid(format!(
                        "_since {value:?} is not an instant (e.g. 2024-01-31T00:00:00Z)"
                    ))
                    .at("_since")
                })?;
                self.since = Some(value.trim().to_owned());
            }
            "_type" => {
                let types = self.types.get_or_insert_with(Vec::new);
                for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    let parsed = fhir::ResourceType::parse(t).ok_or_else(|| {
                        ApiError::invalid(format!("_type {t:?} is not an R4 resource type"))
                            .at("_type")
                    })?;
                    if !types.iter().any(|known| known == parsed.as_str()) {
                        types.push(parsed.as_str().to_owned());
                    }
                }
            }
            "_typeFilter" => self.type_filters.extend(split_type_filters(value)),
            "deidentify" => {
                self.deidentify = match value {
                    "true" | "safe-harbor" => true,
                    "false" => false,
                    _ => {
                        return Err(ApiError::invalid(format!(
                            "deidentify takes safe-harbor (or true, false), not {value:?}"
                        ))
                        .at("deidentify"));
                    }
                }
            }
            "_format" | "_pretty" => {}
            _ => {
                return Err(ApiError::new(
                    Category::Invalid,
                    format!("the $export parameter {name} is not supported"),
                )
                .with_code(fhir::IssueCode::NotSupported)
                .at(name.to_owned()));
            }
        }
        Ok(())
    }
}

/// `_typeFilter` values may list several queries separated by commas
/// (`Type?a=1,Type?b=2`); a comma inside a query's values is not followed
/// by `Type?`.
fn split_type_filters(value: &str) -> Vec<String> {
    let mut queries: Vec<String> = Vec::new();
    for piece in value.split(',') {
        let starts_query = piece
            .split_once('?')
            .is_some_and(|(t, _)| fhir::ResourceType::parse(t).is_some());
        match queries.last_mut() {
            Some(last) if !starts_query => {
                last.push(',');
                last.push_str(piece);
            }
            _ => queries.push(piece.to_owned()),
        }
    }
    queries.retain(|q| !q.is_empty());
    queries
}

/// The patients whose compartments an export is narrowed to before the
/// caller's reach: the `patient` parameter, the Group's members, both.
#[derive(Debug, Clone)]
pub enum Patients {
    All,
    Only(Vec<String>),
}

impl Patients {
    fn narrow(self, to: &[String]) -> Patients {
        match self {
            Patients::All => Patients::Only(to.to_vec()),
            Patients::Only(ids) => {
                Patients::Only(ids.into_iter().filter(|id| to.contains(id)).collect())
            }
        }
    }
}

/// Works out the job from the parameters and the caller's rights.
pub fn plan(
    ctx: &TenantCtx,
    level: Level,
    params: &Params,
    patients: Patients,
) -> Result<Spec, ApiError> {
    let patient_level = level != Level::System;
    let patients = match &params.patients {
        Some(listed) if patient_level => patients.narrow(listed),
        Some(_) => {
            return Err(ApiError::invalid(
                "patient is a parameter of Patient and Group level exports",
            )
            .at("patient"));
        }
        None => patients,
    };
    let candidates: Vec<String> = match &params.types {
        Some(listed) => listed.clone(),
        None if patient_level => compartment_types(),
        None => fhir::id::RESOURCE_TYPES
            .iter()
            .map(|t| (*t).to_owned())
            .collect(),
    };
    let filters = parse_filters(&params.type_filters, &candidates)?;
    let mut types = Vec::new();
    for t in &candidates {
        let in_compartment = authorize::in_patient_compartment(t);
        if patient_level && !in_compartment {
            // Patient and Group exports hold the patients' compartments;
            // shared resources (Medication, Practitioner, …) are left out.
            if params.types.is_some() {
                return Err(ApiError::invalid(format!(
                    "{t} is not in the Patient compartment: a Patient or Group export cannot hold it"
                ))
                .at("_type"));
            }
            continue;
        }
        let reach = match authorize::reach(ctx, Interaction::Read, t) {
            Ok(reach) => reach,
            // Without _type, the export holds what the caller may read.
            Err(_) if params.types.is_none() => continue,
            Err(e) => return Err(e),
        };
        let narrowed = match (&reach, &patients, in_compartment) {
            (Reach::Patient(own), Patients::All, true) => Some(vec![own.clone()]),
            (Reach::Patient(own), Patients::Only(ids), true) => {
                Some(ids.iter().filter(|id| *id == own).cloned().collect())
            }
            (_, Patients::Only(ids), true) if patient_level => Some(ids.clone()),
            _ => None,
        };
        types.push(TypePlan {
            res_type: t.clone(),
            patients: narrowed,
            filters: filters
                .iter()
                .filter(|(ft, _)| ft == t)
                .map(|(_, query)| query.clone())
                .collect(),
        });
    }
    let spec = Spec {
        any_patient: patient_level && matches!(patients, Patients::All),
        level,
        types,
        since: params.since.clone(),
        integrator: authorize::integrator(ctx).map(str::to_owned),
        deidentify: params.deidentify,
    };
    // Every filter must parse now, not fail the job later.
    for plan in &spec.types {
        plan.criteria(ctx, &spec)?;
    }
    Ok(spec)
}

/// Every type of the Patient compartment, Patient included.
fn compartment_types() -> Vec<String> {
    fhir::id::RESOURCE_TYPES
        .iter()
        .filter(|t| authorize::in_patient_compartment(t))
        .map(|t| (*t).to_owned())
        .collect()
}

/// `(type, query)` of each `_typeFilter`; the type must be exported.
fn parse_filters(filters: &[String], types: &[String]) -> Result<Vec<(String, String)>, ApiError> {
    filters
        .iter()
        .map(|filter| {
            let bad = |why: String| ApiError::invalid(why).at("_typeFilter");
            let (t, query) = filter
                .split_once('?')
                .ok_or_else(|| bad(format!("_typeFilter {filter:?} is not Type?query")))?;
            if !types.iter().any(|known| known == t) {
                return Err(bad(format!(
                    "_typeFilter {filter:?} is for {t}, which the export does not include"
                )));
            }
            Ok((t.to_owned(), query.to_owned()))
        })
        .collect()
}

impl TypePlan {
    /// The search criteria selecting the type's resources of the export.
    pub fn criteria(&self, ctx: &TenantCtx, spec: &Spec) -> Result<Criteria, ApiError> {
        let registry = ctx.registry();
        let parse = |params: &[(String, String)]| {
            criteria::parse(
                &registry,
                &self.res_type,
                params,
                Strictness::Strict,
                &ctx.base_url,
            )
            .map(|parsed| parsed.criteria)
        };
        let mut clauses = Vec::new();
        let mut alternatives = Vec::new();
        for query in &self.filters {
            let params = crate::service::conditional::parse_query(query);
            if let Some((name, _)) = params.iter().find(|(n, _)| is_result_parameter(n)) {
                return Err(ApiError::invalid(format!(
                    "_typeFilter cannot use the result parameter {name}"
                ))
                .at("_typeFilter"));
            }
            alternatives.push(parse(&params).map_err(|e| e.at("_typeFilter"))?);
        }
        match alternatives.len() {
            0 => {}
            1 => clauses.extend(alternatives.remove(0).clauses),
            _ => clauses.push(Clause::AnyOf(alternatives)),
        }
        if let Some(since) = &spec.since {
            let params = [("_lastUpdated".to_owned(), format!("gt{since}"))];
            clauses.extend(parse(&params).map_err(|e| e.at("_since"))?.clauses);
        }
        if let Some(patients) = &self.patients {
            clauses.push(compartment_clause(&self.res_type, Some(patients)));
        } else if spec.any_patient && self.res_type != "Patient" {
            clauses.push(compartment_clause(&self.res_type, None));
        }
        if let Some(integrator) = &spec.integrator {
            clauses.push(Clause::Match {
                table: "search_token",
                negated: false,
                alternatives: vec![Alternative {
                    param: "_tag".to_owned(),
                    cond: Cond::Token(criteria::TokenValue::SystemCode(
                        crate::auth::integrator::TAG_SYSTEM.to_owned(),
                        integrator.clone(),
                    )),
                }],
            });
        }
        Ok(Criteria { clauses })
    }
}

fn is_result_parameter(name: &str) -> bool {
    name.starts_with('_')
        && matches!(
            name.split(':').next().unwrap_or(name),
            "_count"
                | "_sort"
                | "_include"
                | "_revinclude"
                | "_summary"
                | "_elements"
                | "_total"
                | "_contained"
                | "_containedType"
                | "_page"
        )
}

/// Resources of `res_type` in the compartment of one of `patients` (any
/// patient: `None`); for Patient, the patients themselves.
pub fn compartment_clause(res_type: &str, patients: Option<&Vec<String>>) -> Clause {
    if res_type == "Patient" {
        return Clause::Ids(patients.cloned().unwrap_or_default());
    }
    let params = fhir::compartment::patient_compartment_params(res_type).unwrap_or_default();
    Clause::Match {
        table: "search_reference",
        negated: false,
        alternatives: params
            .iter()
            .map(|param| Alternative {
                param: param.clone(),
                cond: Cond::Reference(ReferenceValue::AnyOf {
                    target_type: "Patient".to_owned(),
                    ids: patients.cloned(),
                }),
            })
            .collect(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn type_filters_split_at_commas_that_start_a_query() {
        for (value, expected) in [
            ("Observation?code=a", vec!["Observation?code=a"]),
            (
                "Observation?code=a,b,Condition?clinical-status=active",
                vec!["Observation?code=a,b", "Condition?clinical-status=active"],
            ),
            ("", vec![]),
        ] {
            assert_eq!(split_type_filters(value), expected, "{value}");
        }
    }

    #[test]
    fn output_formats_are_ndjson_by_any_of_its_names() {
        for format in [
            "application/fhir+ndjson",
            "application/fhir ndjson",
            "application/ndjson",
            "ndjson",
        ] {
            let query = [("_outputFormat".to_owned(), format.to_owned())];
            assert!(Params::read(&query, None).is_ok(), "{format}");
        }
        let query = [("_outputFormat".to_owned(), "text/csv".to_owned())];
        assert!(Params::read(&query, None).is_err());
    }

    #[test]
    fn unknown_parameters_and_get_patients_are_refused() {
        for name in ["_elements", "includeAssociatedData", "patient"] {
            let query = [(name.to_owned(), "x".to_owned())];
            assert!(Params::read(&query, None).is_err(), "{name}");
        }
    }

    #[test]
    fn post_bodies_carry_patients_and_other_parameters() {
        let body = serde_json::json!({"resourceType": "Parameters", "parameter": [
            {"name": "_type", "valueString": "Patient,Observation"},
            {"name": "patient", "valueReference": {"reference": "Patient/p1"}},
            {"name": "patient", "valueReference": {"reference": "Patient/p2"}},
            {"name": "_since", "valueInstant": "2024-01-01T00:00:00Z"}
        ]});
        let params = Params::read(&[], Some(&body)).unwrap();
        assert_eq!(params.patients.unwrap(), ["p1", "p2"]);
        assert_eq!(params.types.unwrap(), ["Patient", "Observation"]);
        assert_eq!(params.since.as_deref(), Some("2024-01-01T00:00:00Z"));
    }
}
