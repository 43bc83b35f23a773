//! Loaded releases over HTTP (issue 5): the SNOMED CT RF2 fixture loaded
//! with `baraza terminology load` — its simple reference sets as implicit
//! value sets and `concept in` filters, its attributes as `$lookup`
//! properties and `$expand` property filters — and the ICD-10 ClaML
//! fixture uploaded with `$load`, whose modifiers make fifth and fourth
//! characters.

use crate::harness::{
    TestApp, assert_outcome_names, cluster, fresh_database, spawn_app, spawn_app_on,
};
use crate::processes::baraza;
use crate::terminology::{codes, get, param, post};
use base64::Engine;
use serde_json::{Value, json};

const SCT: &str = "http://snomed.info/sct";
const EDITION: &str = "http://snomed.info/sct/900000000000207008/version/20250101";
const ANEMIA: &str = "8000003005";
const IRON_DEFICIENCY_ANEMIA: &str = "8000004004";
const BLEEDING: &str = "8000005003";
const ANEMIA_DUE_TO_BLOOD_LOSS: &str = "8000006002";
const BODY_STRUCTURE: &str = "8000007007";
const BLOOD_STRUCTURE: &str = "8000008001";
const OLD_CONCEPT: &str = "8000009008";
const PALE_SKIN: &str = "8000014009";
const CHRONIC_ANEMIA: &str = "8000015008";
const ANEMIA_REFSET: &str = "8000016004";
const BLEEDING_REFSET: &str = "8000017000";
const FINDING_SITE: &str = "363698007";
const DUE_TO: &str = "42752001";

fn fixture(path: &str) -> String {
    format!(
        "{}/../terminology/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A server on a database holding the RF2 fixture as global content.
async fn snomed_app() -> TestApp {
    let dbname = fresh_database().await;
    let release = fixture("rf2/SnomedCT_TestRF2_PRODUCTION_20250101T120000Z");
    let out = baraza(
        &["terminology", "load", "--format", "snomed", &release],
        &[("BARAZA_DATABASE_URL", &cluster().url(&dbname))],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    spawn_app_on(dbname, |_| {}).await
}

/// A query parameter value, percent-encoded.
fn encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `ValueSet/$expand` of an implicit value set.
async fn expand_url(app: &TestApp, url: &str, extra: &str) -> (u16, Value) {
    get(
        app,
        &format!("ValueSet/$expand?url={}{extra}", encoded(url)),
    )
    .await
}

/// `ValueSet/$expand` of an inline value set over SNOMED CT with `filters`.
async fn expand_filtered(app: &TestApp, filters: Value) -> Vec<String> {
    let body = json!({"resourceType": "Parameters", "parameter": [{"name": "valueSet", "resource": {
        "resourceType": "ValueSet", "status": "active",
        "compose": {"include": [{"system": SCT, "filter": filters}]}}}]});
    let (status, vs) = post(app, "ValueSet/$expand", &body).await;
    assert_eq!(status, 200, "{vs}");
    let mut found = codes(&vs);
    found.sort();
    found
}

#[tokio::test]
async fn snomed_reference_sets_are_implicit_value_sets() {
    let app = snomed_app().await;
    let refset = |id: &str| format!("{SCT}?fhir_vs=refset/{id}");
    let (status, vs) = expand_url(&app, &refset(ANEMIA_REFSET), "").await;
    assert_eq!(status, 200, "{vs}");
    // Not the inactive membership, nor the description that is a member.
    assert_eq!(
        codes(&vs),
        [ANEMIA, IRON_DEFICIENCY_ANEMIA, OLD_CONCEPT, CHRONIC_ANEMIA]
    );
    let (_, active) = expand_url(&app, &refset(ANEMIA_REFSET), "&activeOnly=true").await;
    assert_eq!(active["expansion"]["total"], 3, "{active}");
    // An edition's url names that version.
    let (status, bleeding) = expand_url(
        &app,
        &format!("{EDITION}?fhir_vs=refset/{BLEEDING_REFSET}"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{bleeding}");
    assert_eq!(codes(&bleeding), [BLEEDING, PALE_SKIN]);
    let (status, other) = expand_url(
        &app,
        &format!("{SCT}/900000000000207008/version/20990101?fhir_vs=refset/{BLEEDING_REFSET}"),
        "",
    )
    .await;
    assert_eq!(status, 422, "{other}");
    assert_outcome_names(&other, "url");

    // Every reference set with members.
    let (status, all) = expand_url(&app, &format!("{SCT}?fhir_vs=refset"), "").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(codes(&all), [ANEMIA_REFSET, BLEEDING_REFSET]);
    assert_eq!(
        all["expansion"]["contains"][0]["display"],
        "Anaemia reference set"
    );

    // Membership checks, as $validate-code and as a search modifier's set.
    let anemia_set = encoded(&refset(ANEMIA_REFSET));
    for (code, expected) in [(CHRONIC_ANEMIA, true), (ANEMIA_DUE_TO_BLOOD_LOSS, false)] {
        let (status, out) = get(
            &app,
            &format!("ValueSet/$validate-code?url={anemia_set}&system={SCT}&code={code}"),
        )
        .await;
        assert_eq!(
            (status, param(&out, "result")),
            (200, &json!(expected)),
            "{code}: {out}"
        );
    }
    // `concept in` of several reference sets in a compose.
    assert_eq!(
        expand_filtered(
            &app,
            json!([{"property": "concept", "op": "in", "value": format!("{ANEMIA_REFSET},{BLEEDING_REFSET}")}])
        )
        .await
        .len(),
        6
    );
    assert_eq!(
        expand_filtered(
            &app,
            json!([{"property": "concept", "op": "is-a", "value": ANEMIA},
                   {"property": "concept", "op": "not-in", "value": ANEMIA_REFSET}])
        )
        .await,
        [ANEMIA_DUE_TO_BLOOD_LOSS]
    );
    // A concept that is no reference set has no members.
    let (status, none) = expand_url(&app, &refset(ANEMIA), "").await;
    assert_eq!(
        (status, none["expansion"]["total"].clone()),
        (200, json!(0))
    );
    // Not an SCTID: the client's mistake, named.
    let (status, bad) = expand_url(&app, &refset("anaemia"), "").await;
    assert_eq!(status, 400, "{bad}");
    assert_outcome_names(&bad, "url");
}

#[tokio::test]
async fn snomed_attributes_are_lookup_properties_and_expand_filters() {
    let app = snomed_app().await;
    let lookup = |code: &'static str, extra: &'static str| {
        let app = &app;
        async move {
            let (status, out) = get(
                app,
                &format!("CodeSystem/$lookup?system={SCT}&code={code}{extra}"),
            )
            .await;
            assert_eq!(status, 200, "{out}");
            out["parameter"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["name"] == "property")
                .map(|p| {
                    (
                        p["part"][0]["valueCode"].as_str().unwrap().to_owned(),
                        p["part"][1].clone(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    // The finding site is in two role groups: one property.
    let sites = lookup(IRON_DEFICIENCY_ANEMIA, "&property=363698007").await;
    assert_eq!(
        sites,
        [(
            FINDING_SITE.to_owned(),
            json!({"name": "value", "valueCode": BLOOD_STRUCTURE})
        )]
    );
    let all = lookup(ANEMIA_DUE_TO_BLOOD_LOSS, "").await;
    assert!(
        all.contains(&(
            DUE_TO.to_owned(),
            json!({"name": "value", "valueCode": BLEEDING})
        )),
        "{all:?}"
    );
    // An inactive relationship is not a property.
    assert!(
        !lookup(CHRONIC_ANEMIA, "")
            .await
            .iter()
            .any(|(code, _)| code == FINDING_SITE)
    );

    for (filter, expected) in [
        (
            json!({"property": FINDING_SITE, "op": "=", "value": BLOOD_STRUCTURE}),
            vec![IRON_DEFICIENCY_ANEMIA],
        ),
        (
            json!({"property": FINDING_SITE, "op": "is-a", "value": BODY_STRUCTURE}),
            vec![IRON_DEFICIENCY_ANEMIA],
        ),
        (
            json!({"property": FINDING_SITE, "op": "descendent-of", "value": BLOOD_STRUCTURE}),
            vec![],
        ),
        (
            json!({"property": DUE_TO, "op": "exists", "value": "true"}),
            vec![ANEMIA_DUE_TO_BLOOD_LOSS],
        ),
        (
            json!({"property": DUE_TO, "op": "in", "value": format!("{BLEEDING},{ANEMIA}")}),
            vec![ANEMIA_DUE_TO_BLOOD_LOSS],
        ),
    ] {
        assert_eq!(
            expand_filtered(&app, json!([filter])).await,
            expected,
            "{filter}"
        );
    }

    // The served CodeSystem declares the attributes it uses.
    let (status, bundle) = get(
        &app,
        &format!("CodeSystem?url={SCT}&version={}", encoded(EDITION)),
    )
    .await;
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(
        bundle["entry"].as_array().map(Vec::len),
        Some(1),
        "{bundle}"
    );
    let properties = bundle["entry"][0]["resource"]["property"].clone();
    let declared = |code: &str| {
        properties
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["code"] == code)
            .cloned()
    };
    assert_eq!(
        declared(FINDING_SITE),
        Some(json!({"code": FINDING_SITE, "type": "code",
                    "uri": format!("http://snomed.info/id/{FINDING_SITE}")})),
        "{properties}"
    );
    assert!(declared(DUE_TO).is_some() && declared("inactive").is_some());
}

#[tokio::test]
async fn claml_modifiers_make_codes_in_an_uploaded_release() {
    let app = spawn_app().await;
    let icd10 = "http://hl7.org/fhir/sid/icd-10";
    let text = std::fs::read_to_string(fixture("claml/icd10-test.xml")).unwrap();
    let upload = json!({"resourceType": "Parameters", "parameter": [
        {"name": "format", "valueCode": "icd10"},
        {"name": "file", "valueAttachment": {"contentType": "application/xml",
            "data": base64::engine::general_purpose::STANDARD.encode(text)}}]});
    let (status, out) = post(&app, "CodeSystem/$load", &upload).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(param(&out, "concepts"), 34);

    let (status, lookup) = get(
        &app,
        &format!("CodeSystem/$lookup?system={icd10}&code=M00.01"),
    )
    .await;
    assert_eq!(status, 200, "{lookup}");
    assert_eq!(
        param(&lookup, "display"),
        "Staphylococcal arthritis and polyarthritis, shoulder region"
    );
    let property = |name: &str| {
        lookup["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "property" && p["part"][0]["valueCode"] == name)
            .map(|p| p["part"][1]["valueCode"].clone())
    };
    assert_eq!(property("parent"), Some(json!("M00.0")));
    assert_eq!(property("modifier"), Some(json!("S13M00_5")));

    let (_, subsumes) = get(
        &app,
        &format!("CodeSystem/$subsumes?system={icd10}&codeA=M00&codeB=M00.01"),
    )
    .await;
    assert_eq!(param(&subsumes, "outcome"), "subsumes");
    let body = json!({"resourceType": "Parameters", "parameter": [{"name": "valueSet", "resource": {
        "resourceType": "ValueSet", "status": "active",
        "compose": {"include": [{"system": icd10,
            "filter": [{"property": "concept", "op": "is-a", "value": "E10-E14"}]}]}}}]});
    let (status, diabetes) = post(&app, "ValueSet/$expand", &body).await;
    assert_eq!(status, 200, "{diabetes}");
    let mut found = codes(&diabetes);
    found.sort();
    assert_eq!(found, ["E10", "E10-E14", "E10.0", "E10.1", "E11", "E11.0"]);
    for (code, expected) in [("E11.0", true), ("E11.1", false), ("M00.10", false)] {
        let (_, out) = get(
            &app,
            &format!("CodeSystem/$validate-code?url={icd10}&code={code}"),
        )
        .await;
        assert_eq!(param(&out, "result"), expected, "{code}: {out}");
    }
}
