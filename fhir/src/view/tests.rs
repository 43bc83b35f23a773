//! Unit tests for ViewDefinition parsing (error paths), evaluation corner
//! cases the official suite does not cover, the SQL type mapping and the
//! SQL-on-FHIR FHIRPath functions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{ViewDefinition, ViewError};
use crate::fhirpath::{Env, Expression, evaluate};
use serde_json::{Value as Json, json};

fn view(select: Json) -> Json {
    json!({"resourceType": "ViewDefinition", "resource": "Patient", "status": "active", "select": select})
}

/// Parsing `definition` fails at `path`.
fn check_error(definition: Json, path: &str) {
    match ViewDefinition::parse(&definition) {
        Ok(_) => panic!("expected an error at {path}"),
        Err(ViewError { path: p, message }) => assert_eq!(p, path, "{message}"),
    }
}

/// Evaluating `definition` on `resource` gives `rows`.
fn check_rows(definition: Json, resource: Json, rows: Json) {
    let v = ViewDefinition::parse(&definition).unwrap();
    let got: Vec<Json> = v
        .evaluate(&resource)
        .unwrap()
        .into_iter()
        .map(|r| Json::Object(v.row_object(r)))
        .collect();
    assert_eq!(Json::Array(got), rows);
}

fn column(name: &str, path: &str) -> Json {
    json!({"name": name, "path": path})
}

#[test]
fn invalid_definitions_name_the_element() {
    check_error(json!({}), "resource");
    check_error(json!({"resource": "Patient"}), "select");
    check_error(json!({"resource": "Patient", "select": []}), "select");
    check_error(json!({"resource": "Pateint", "select": []}), "resource");
    check_error(
        json!({"resourceType": "Basic", "resource": "Patient"}),
        "resourceType",
    );
    check_error(
        view(json!([{"column": [column("id", "id")], "colum": []}])),
        "select[0].colum",
    );
    check_error(
        view(json!([{"column": [column("id", "id"), column("2x", "id")]}])),
        "select[0].column[1].name",
    );
    check_error(
        view(json!([{"column": [column("id", "id"), column("b", "name.(")]}])),
        "select[0].column[1].path",
    );
    check_error(
        view(json!([{"column": [column("id", "id"), {"name": "b"}]}])),
        "select[0].column[1].path",
    );
    check_error(
        view(json!([{"column": [{"name": "a", "path": "id", "type": "strin"}]}])),
        "select[0].column[0].type",
    );
    check_error(
        view(json!([{"column": [{"name": "a", "path": "id", "collection": "yes"}]}])),
        "select[0].column[0].collection",
    );
    check_error(
        view(json!([{"column": [column("a", "id")]}, {"column": [column("a", "id")]}])),
        "select[1].column[0].name",
    );
    check_error(
        view(json!([{"forEach": 1, "column": [column("a", "id")]}])),
        "select[0].forEach",
    );
    check_error(
        view(json!([{"forEach": "name", "forEachOrNull": "name", "column": [column("a", "id")]}])),
        "select[0]",
    );
    check_error(
        view(json!([{"repeat": "item", "column": [column("a", "id")]}])),
        "select[0].repeat",
    );
    check_error(view(json!([{"forEach": "name"}])), "select[0]");
    check_error(
        view(
            json!([{"unionAll": [{"column": [column("a", "id")]}, {"column": [column("b", "id")]}]}]),
        ),
        "select[0].unionAll[1]",
    );
    check_error(
        view(json!([{"column": [column("a", "%nope")]}])),
        "select[0].column[0].path",
    );
}

#[test]
fn invalid_constants_and_filters_name_the_element() {
    let mut v = view(json!([{"column": [column("a", "id")]}]));
    v["constant"] = json!([{"name": "x"}]);
    check_error(v.clone(), "constant[0]");
    v["constant"] = json!([{"name": "x", "valueHumanName": {"family": "F"}}]);
    check_error(v.clone(), "constant[0].valueHumanName");
    v["constant"] = json!([{"name": "x", "valueInteger": "1"}]);
    check_error(v.clone(), "constant[0].valueInteger");
    v["constant"] = json!([{"name": "rowIndex", "valueInteger": 1}]);
    check_error(v.clone(), "constant[0].name");
    v["constant"] = json!([]);
    v["where"] = json!([{"path": "active", "note": 1}]);
    check_error(v.clone(), "where[0].note");
    v["where"] = json!([{"description": "no path"}]);
    check_error(v, "where[0].path");
}

#[test]
fn runtime_errors_name_the_element() {
    let v = ViewDefinition::parse(&view(
        json!([{"column": [column("id", "id"), column("given", "name.given")]}]),
    ))
    .unwrap();
    let patient = json!({"resourceType": "Patient", "id": "p", "name": [{"given": ["A", "B"]}]});
    assert_eq!(
        v.evaluate(&patient).unwrap_err().path,
        "select[0].column[1].path"
    );
    let mut filtered = view(json!([{"column": [column("id", "id")]}]));
    filtered["where"] = json!([{"path": "name.given"}]);
    let v = ViewDefinition::parse(&filtered).unwrap();
    assert_eq!(v.evaluate(&patient).unwrap_err().path, "where[0].path");
}

#[test]
fn other_resource_types_give_no_rows() {
    let v = ViewDefinition::parse(&view(json!([{"column": [column("id", "id")]}]))).unwrap();
    assert!(
        v.evaluate(&json!({"resourceType": "Observation", "id": "o"}))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn for_each_or_null_keeps_one_row_when_nested_parts_are_empty() {
    let definition = view(json!([
        {"column": [column("id", "id")]},
        {"forEachOrNull": "contact", "column": [column("i", "%rowIndex"), column("k", "'k'")],
         "select": [{"forEach": "telecom", "column": [column("tel", "value")]}]}
    ]));
    check_rows(
        definition,
        json!({"resourceType": "Patient", "id": "p"}),
        json!([{"id": "p", "i": 0, "k": "k", "tel": null}]),
    );
}

#[test]
fn repeat_that_does_not_descend_is_an_error() {
    let v = ViewDefinition::parse(&view(
        json!([{"repeat": ["%resource"], "column": [column("id", "id")]}]),
    ))
    .unwrap();
    let err = v
        .evaluate(&json!({"resourceType": "Patient", "id": "p"}))
        .unwrap_err();
    assert_eq!(err.path, "select[0].repeat[0]");
}

/// A JSON number with exactly these digits.
fn decimal(text: &str) -> Json {
    Json::Number(text.parse().unwrap())
}

#[test]
fn values_keep_their_json_form() {
    let definition = view(json!([{"column": [
        column("multiple_birth", "multipleBirth.ofType(integer)"),
        column("computed", "1.50 + 1"),
        column("birth", "birthDate"),
        {"name": "given", "path": "name.given", "collection": true}
    ]}]));
    check_rows(
        definition,
        json!({"resourceType": "Patient", "multipleBirthInteger": 2, "birthDate": "1970-06", "name": [{"given": ["A"]}]}),
        json!([{"multiple_birth": 2, "computed": decimal("2.50"), "birth": "1970-06", "given": ["A"]}]),
    );
}

#[test]
fn sql_types_follow_the_declared_fhir_type() {
    let columns = [
        ("string", false, "text"),
        ("code", false, "text"),
        ("base64Binary", false, "text"),
        ("dateTime", false, "text"),
        ("integer", false, "integer"),
        ("unsignedInt", false, "integer"),
        ("integer64", false, "bigint"),
        ("decimal", false, "numeric"),
        ("boolean", false, "boolean"),
        ("Reference", false, "jsonb"),
        ("string", true, "jsonb"),
    ];
    for (ty, collection, sql) in columns {
        let c = json!({"name": "c", "path": "id", "type": ty, "collection": collection});
        let v = ViewDefinition::parse(&view(json!([{"column": [c]}]))).unwrap();
        assert_eq!(v.columns()[0].sql_type(), sql, "{ty}");
    }
    let v = ViewDefinition::parse(&view(json!([{"column": [column("c", "id")]}]))).unwrap();
    assert_eq!(v.columns()[0].sql_type(), "text");
}

/// `expr` on `resource` gives the strings `expected`.
fn check_keys(resource: &Json, expr: &str, expected: &[&str]) {
    let e = Expression::parse(expr).unwrap();
    let out = evaluate(&e, resource, &Env::new()).unwrap();
    let got: Vec<&str> = out.iter().filter_map(|i| i.as_str()).collect();
    assert_eq!(got, expected, "{expr}");
}

#[test]
fn resource_and_reference_keys() {
    let r = json!({"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"},
    "performer": [
        {"reference": "https://other.example/fhir/Practitioner/pr1/_history/3"},
        {"reference": "#contained"},
        {"reference": "urn:uuid:9d5c2b8e-6f3a-4b1c-9e2d-7a8b9c0d1e2f"},
        {"identifier": {"value": "x"}},
        {"reference": "Organization/org1/_history/2"}
    ]});
    check_keys(&r, "getResourceKey()", &["o1"]);
    check_keys(&r, "subject.getReferenceKey()", &["p1"]);
    check_keys(&r, "subject.getReferenceKey(Patient)", &["p1"]);
    check_keys(&r, "subject.getReferenceKey(Group)", &[]);
    check_keys(&r, "performer.getReferenceKey()", &["pr1", "org1"]);
    check_keys(&r, "performer.getReferenceKey(Organization)", &["org1"]);
    check_keys(&r, "subject.reference.getReferenceKey()", &["p1"]);
    let e = Expression::parse("subject.getReferenceKey(Pateint)").unwrap();
    assert!(evaluate(&e, &r, &Env::new()).is_err());
}

#[test]
fn external_constants_are_listed() {
    let e = Expression::parse("name.where(use = %a).given[%b] | %resource.id").unwrap();
    assert_eq!(e.external_constants(), vec!["a", "b", "resource"]);
}

#[test]
fn view_definitions_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<ViewDefinition>();
}
