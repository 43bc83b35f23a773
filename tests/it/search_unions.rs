//! Observation's `combo-` parameters, which Baraza does not store but
//! searches as the union of the parameter on the Observation and the one
//! on its components (their R4 definitions say exactly that). Every
//! expected answer is worked out by hand from the six Observations below.

use crate::harness::{TestApp, spawn_app};
use serde_json::{Value, json};

const LOINC: &str = "http://loinc.org";
const SCT: &str = "http://snomed.info/sct";
const UCUM: &str = "http://unitsofmeasure.org";

fn coded(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}]})
}

fn mmhg(value: u32) -> Value {
    json!({"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"})
}

fn observation(id: &str, patient: &str, code: Value, rest: Value) -> Value {
    let mut o = json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": code, "subject": {"reference": format!("Patient/{patient}")}});
    for (k, v) in rest.as_object().unwrap() {
        o[k] = v.clone();
    }
    o
}

/// - o1 (p1): systolic 120, no components;
/// - o2 (p2): a blood-pressure panel with components systolic 140 and
///   diastolic 90, no value of its own;
/// - o3 (p1): diastolic 80;
/// - o4 (p3): a finding valued "negative", with a component coded
///   94500-6 valued "positive";
/// - o5 (p3): heart rate, absent ("asked-unknown");
/// - o6 (p3): body weight, no value at all.
async fn load(app: &TestApp) {
    let systolic = || coded(LOINC, "8480-6", "Systolic blood pressure");
    let diastolic = || coded(LOINC, "8462-4", "Diastolic blood pressure");
    let resources = vec![
        json!({"resourceType": "Patient", "id": "p1"}),
        json!({"resourceType": "Patient", "id": "p2"}),
        json!({"resourceType": "Patient", "id": "p3"}),
        observation("o1", "p1", systolic(), json!({"valueQuantity": mmhg(120)})),
        observation(
            "o2",
            "p2",
            coded(LOINC, "85354-9", "Blood pressure panel"),
            json!({"component": [
                {"code": systolic(), "valueQuantity": mmhg(140)},
                {"code": diastolic(), "valueQuantity": mmhg(90)}
            ]}),
        ),
        observation("o3", "p1", diastolic(), json!({"valueQuantity": mmhg(80)})),
        observation(
            "o4",
            "p3",
            coded(SCT, "1111", "A finding"),
            json!({
                "valueCodeableConcept": coded(SCT, "260385009", "Negative"),
                "component": [{"code": coded(LOINC, "94500-6", "SARS-CoV-2 RNA"),
                               "valueCodeableConcept": coded(SCT, "10828004", "Positive")}]
            }),
        ),
        observation(
            "o5",
            "p3",
            coded(LOINC, "8867-4", "Heart rate"),
            json!({"dataAbsentReason": coded(
                "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                "asked-unknown",
                "Asked But Unknown"
            )}),
        ),
        observation(
            "o6",
            "p3",
            coded(LOINC, "29463-7", "Body weight"),
            json!({}),
        ),
    ];
    app.load(&resources).await;
}

/// The `Type/id` of a search's entries, in the Bundle's order.
async fn in_order(app: &TestApp, query: &str) -> Vec<String> {
    app.search_entries(query)
        .await
        .1
        .into_iter()
        .map(|(_, key)| key)
        .collect()
}

#[tokio::test]
async fn combo_parameters_search_the_observation_and_its_components() {
    let app = spawn_app().await;
    load(&app).await;
    let ids = |query: &'static str| {
        let app = &app;
        async move { app.match_ids(&format!("Observation?{query}")).await }
    };

    // Tokens: the code or a component's code.
    assert_eq!(
        ids("combo-code=http://loinc.org|8480-6").await,
        ["o1", "o2"]
    );
    assert_eq!(ids("combo-code=8462-4").await, ["o2", "o3"]);
    assert_eq!(ids("combo-code=8462-4,94500-6").await, ["o2", "o3", "o4"]);
    assert_eq!(ids("combo-code:not=8480-6").await, ["o3", "o4", "o5", "o6"]);
    assert_eq!(ids("combo-code:text=systolic").await, ["o1", "o2"]);
    assert_eq!(ids("combo-value-concept=10828004").await, ["o4"]);
    assert_eq!(
        ids("combo-value-concept=http://snomed.info/sct|260385009").await,
        ["o4"]
    );
    assert_eq!(ids("combo-data-absent-reason=asked-unknown").await, ["o5"]);

    // Quantities: the value or a component's value.
    assert_eq!(ids("combo-value-quantity=gt130").await, ["o2"]);
    assert_eq!(ids("combo-value-quantity=lt100").await, ["o2", "o3"]);
    assert_eq!(
        ids("combo-value-quantity=120|http://unitsofmeasure.org|mm[Hg]").await,
        ["o1"]
    );
    assert_eq!(
        ids("combo-value-quantity:missing=true").await,
        ["o4", "o5", "o6"]
    );
    assert_eq!(
        ids("combo-value-quantity:missing=false").await,
        ["o1", "o2", "o3"]
    );
    assert_eq!(ids("combo-code:missing=true").await, Vec::<String>::new());

    // Composites pair a code with the value beside it, never across.
    assert_eq!(
        ids("combo-code-value-quantity=http://loinc.org|8480-6$gt130").await,
        ["o2"]
    );
    assert_eq!(
        ids("combo-code-value-quantity=8480-6$ge120").await,
        ["o1", "o2"]
    );
    assert_eq!(ids("combo-code-value-quantity=8462-4$lt85").await, ["o3"]);
    assert_eq!(
        ids("combo-code-value-concept=http://loinc.org|94500-6$http://snomed.info/sct|10828004")
            .await,
        ["o4"]
    );
    assert_eq!(
        ids("combo-code-value-concept=http://loinc.org|94500-6$http://snomed.info/sct|260385009")
            .await,
        Vec::<String>::new()
    );

    // Sorting: by the smallest value ascending, the largest descending,
    // Observations without one last.
    let sorted = in_order(&app, "Observation?_sort=combo-value-quantity").await;
    let order = ["o3", "o2", "o1", "o4", "o5", "o6"].map(|id| format!("Observation/{id}"));
    assert_eq!(sorted, order);
    let sorted = in_order(&app, "Observation?_sort=-combo-value-quantity").await;
    let order = ["o2", "o1", "o3", "o4", "o5", "o6"].map(|id| format!("Observation/{id}"));
    assert_eq!(sorted, order);

    // Reverse chaining through a union.
    assert_eq!(
        app.match_ids("Patient?_has:Observation:patient:combo-code=8462-4")
            .await,
        ["p1", "p2"]
    );

    // A malformed value is refused under the name the client used.
    let (status, body) =
        crate::harness::status_json(app.get("Observation?combo-value-quantity=abc").await).await;
    assert_eq!(status, 400, "{body}");
    crate::harness::assert_outcome_names(&body, "combo-value-quantity");
    let diagnostics = body["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(
        diagnostics.starts_with("combo-value-quantity value \"abc\""),
        "{diagnostics}"
    );

    // None of it is stored under the combo- names.
    for table in ["search_token", "search_quantity", "search_string"] {
        let rows: i64 = app
            .db()
            .await
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE param LIKE 'combo-%'"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 0, "{table}");
    }
}
