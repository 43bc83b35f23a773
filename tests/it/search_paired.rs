//! Observation `code` with `value-quantity` or `value-concept`, which the
//! engine searches through their composite (`search::criteria::paired`):
//! the answers, written by hand from search.html, are those of the two
//! parameters taken separately, including for Observations the composite
//! does not pair (a SampledData value, a component's value, a code
//! without a system).

use crate::harness::spawn_app;
use crate::search_plans::all_pages;
use serde_json::{Value, json};

const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";

fn observation(id: &str, codings: Value, value: Option<(&str, Value)>) -> Value {
    let mut o = json!({"resourceType": "Observation", "id": id, "status": "final",
                       "code": {"coding": codings}});
    if let Some((key, v)) = value {
        o[key] = v;
    }
    o
}

fn mg_dl(value: f64) -> Option<(&'static str, Value)> {
    Some((
        "valueQuantity",
        json!({"value": value, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"}),
    ))
}

#[tokio::test]
async fn code_with_a_value_finds_what_the_two_parameters_find() {
    let app = spawn_app().await;
    let glucose = json!([{"system": LOINC, "code": "2339-0"}]);
    app.load(&[
        // Two codings: found by either.
        observation(
            "two-codings",
            json!([{"system": LOINC, "code": "2339-0"}, {"system": "urn:lab", "code": "GLU"}]),
            mg_dl(200.0),
        ),
        observation("150", glucose.clone(), mg_dl(150.0)),
        // A SampledData value has no quantity to compare.
        observation(
            "sampled",
            glucose.clone(),
            Some((
                "valueSampledData",
                json!({"origin": {"value": 300, "system": UCUM, "code": "mg/dL"},
                       "period": 1000, "dimensions": 1, "data": "1 2 3"}),
            )),
        ),
        observation(
            "other-code",
            json!([{"system": LOINC, "code": "8867-4"}]),
            mg_dl(200.0),
        ),
        observation("no-value", glucose.clone(), None),
        observation("no-system", json!([{"code": "GLU"}]), mg_dl(250.0)),
        observation(
            "concept",
            glucose.clone(),
            Some((
                "valueCodeableConcept",
                json!({"coding": [{"system": "http://snomed.info/sct", "code": "75540009"}]}),
            )),
        ),
        // The value belongs to a component, not to the Observation.
        json!({"resourceType": "Observation", "id": "component", "status": "final",
               "code": {"coding": [{"system": LOINC, "code": "24331-1"}]},
               "component": [{"code": {"coding": glucose.clone()},
                              "valueQuantity": {"value": 300, "system": UCUM, "code": "mg/dL"}}]}),
    ])
    .await;

    let cases: &[(&str, &[&str])] = &[
        (
            "code=http://loinc.org|2339-0&value-quantity=gt180",
            &["two-codings"],
        ),
        ("code=2339-0&value-quantity=gt100", &["150", "two-codings"]),
        ("code=urn:lab|GLU&value-quantity=gt180", &["two-codings"]),
        // `|GLU` is a code without a system; `GLU` is any system.
        ("code=|GLU&value-quantity=gt180", &["no-system"]),
        (
            "code=GLU&value-quantity=gt180",
            &["no-system", "two-codings"],
        ),
        (
            "code=http://loinc.org|2339-0,|GLU&value-quantity=gt180",
            &["no-system", "two-codings"],
        ),
        (
            "code=2339-0&value-quantity=gt100&value-quantity=lt180",
            &["150"],
        ),
        ("code=2339-0&value-quantity=lt120,gt180", &["two-codings"]),
        // 200 mg/dL is 2 g/L.
        (
            "code=2339-0&value-quantity=gt1.8|http://unitsofmeasure.org|g/L",
            &["two-codings"],
        ),
        (
            "code=2339-0&value-quantity=ge100|http://unitsofmeasure.org|mg/dL",
            &["150", "two-codings"],
        ),
        ("code=2339-0&value-quantity=gt500", &[]),
        (
            "code=8867-4,2339-0&value-quantity=eq200",
            &["other-code", "two-codings"],
        ),
        (
            "code=2339-0&value-concept=http://snomed.info/sct|75540009",
            &["concept"],
        ),
        (
            "code=2339-0&value-concept=http://snomed.info/sct|",
            &["concept"],
        ),
        ("code=8867-4&value-concept=75540009", &[]),
        // Left as two parameters: a modifier on the code.
        (
            "code:not=http://loinc.org|8867-4&value-quantity=gt180",
            &["no-system", "two-codings"],
        ),
        ("code=24331-1&value-quantity=gt1", &[]),
    ];
    for (query, expected) in cases {
        assert_eq!(
            app.match_ids(&format!("Observation?{query}")).await,
            *expected,
            "{query}"
        );
    }
    // Paged one by one and counted, the same two.
    let query = "Observation?code=GLU&value-quantity=gt180&_count=1&_total=accurate";
    let pages = all_pages(&app, query).await;
    assert_eq!(pages, [vec!["no-system"], vec!["two-codings"]]);
    let (bundle, _) = app.search_entries(query).await;
    assert_eq!(bundle["total"], 2);
}
