//! Unit tests for the parts the official suite covers thinly: choice types
//! from the model, `extension(url)`, `resolve()`, `as`/`ofType` on reference
//! targets, search-parameter expression shapes, and that every R4
//! search-parameter expression parses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use serde_json::json;

/// Evaluates `expr` on `resource` and compares the items' literals.
fn check(expr: &str, resource: &Json, expected: &[&str]) {
    let parsed = Expression::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    let env = Env::new();
    let out = evaluate(&parsed, resource, &env).unwrap_or_else(|e| panic!("{expr}: {e}"));
    let got: Vec<String> = out.iter().map(Item::to_literal).collect();
    assert_eq!(got, expected, "{expr}");
}

fn types(expr: &str, resource: &Json) -> Vec<String> {
    let parsed = Expression::parse(expr).unwrap();
    let env = Env::new();
    let out = evaluate(&parsed, resource, &env).unwrap();
    out.iter().map(|i| i.type_name().to_owned()).collect()
}

fn observation() -> Json {
    json!({
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": "Patient/123"},
        "performer": [{"reference": "#org"}, {"reference": "Practitioner/9"}],
        "contained": [{"resourceType": "Organization", "id": "org", "name": "Acme"}],
        "effectiveDateTime": "2016-03-28T10:00:00+02:00",
        // Parsed from text so that the decimal keeps its written scale.
        "valueQuantity": serde_json::from_str::<Json>(
            r#"{"value": 185.50, "unit": "lbs", "system": "http://unitsofmeasure.org", "code": "[lb_av]"}"#
        ).unwrap(),
        "component": [
            {"code": {"text": "a"}, "valueString": "high"},
            {"code": {"text": "b"}, "valueCodeableConcept": {"coding": [{"code": "x"}]}}
        ]
    })
}

fn patient() -> Json {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "extension": [
            {"url": "http://example.org/race", "valueCoding": {"code": "2106-3"}},
            {"url": "http://example.org/other", "valueString": "x"}
        ],
        "name": [{"family": "Chalmers", "given": ["Peter", "James"], "_given": [null, {"extension": [{"url": "http://example.org/nick", "valueString": "Jim"}]}]}],
        "birthDate": "1974-12-25",
        "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1974-12-25T14:35:45-05:00"}]},
        "deceasedBoolean": false,
        "managingOrganization": {"reference": "Organization/1"},
        "generalPractitioner": [{"reference": "Practitioner/2"}, {"reference": "Organization/3"}]
    })
}

#[test]
fn choice_types_come_from_the_model() {
    let obs = observation();
    check("Observation.value", &obs, &["185.50 '[lb_av]'"]);
    assert_eq!(types("Observation.value", &obs), ["Quantity"]);
    check("Observation.value.unit", &obs, &["lbs"]);
    check("Observation.valueQuantity", &obs, &[]);
    check(
        "Observation.effective",
        &obs,
        &["@2016-03-28T10:00:00+02:00"],
    );
    assert_eq!(types("Observation.effective", &obs), ["dateTime"]);
    check(
        "Observation.component.value",
        &obs,
        &["high", r#"{"coding":[{"code":"x"}]}"#],
    );
    assert_eq!(
        types("Observation.component.value", &obs),
        ["string", "CodeableConcept"]
    );
    check("Patient.deceased", &patient(), &["false"]);
    check("Observation.value is Quantity", &obs, &["true"]);
    check("Observation.value.type().name", &obs, &["Quantity"]);
}

#[test]
fn search_parameter_expression_shapes() {
    let obs = observation();
    check("Observation.value as Quantity", &obs, &["185.50 '[lb_av]'"]);
    check("(Observation.value as CodeableConcept).text", &obs, &[]);
    // The function form needs a single item; the operator filters.
    let single = Expression::parse("Observation.component.value.as(CodeableConcept)").unwrap();
    assert!(evaluate(&single, &obs, &Env::new()).is_err());
    check(
        "Observation.component.value.ofType(CodeableConcept).coding.code",
        &obs,
        &["x"],
    );
    check(
        "(Observation.component.value as CodeableConcept).coding.code",
        &obs,
        &["x"],
    );
    check("Patient.name.family", &patient(), &["Chalmers"]);
    check("Resource.id", &patient(), &["p1"]);
    check(
        "DomainResource.extension.url.first()",
        &patient(),
        &["http://example.org/race"],
    );
    check("Resource.id | Observation.id", &observation(), &["o1"]);
    assert!(
        Expression::parse("Resource.meta.lastUpdated")
            .unwrap()
            .check(Some("Patient"))
            .is_ok()
    );
    check(
        "Patient.name",
        &patient(),
        &[
            r#"{"family":"Chalmers","given":["Peter","James"],"_given":[null,{"extension":[{"url":"http://example.org/nick","valueString":"Jim"}]}]}"#,
        ],
    );
    check(
        "Observation.code | Patient.name.family",
        &obs,
        &[r#"{"coding":[{"system":"http://loinc.org","code":"29463-7"}]}"#],
    );
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "document",
        "entry": [{"resource": {"resourceType": "Composition", "id": "c", "title": "T"}}]
    });
    check(
        "Bundle.entry[0].resource",
        &bundle,
        &[r#"{"resourceType":"Composition","id":"c","title":"T"}"#],
    );
    assert_eq!(types("Bundle.entry[0].resource", &bundle), ["Composition"]);
    check(
        "(Bundle.entry[0].resource as Composition).title",
        &bundle,
        &["T"],
    );
    let request = json!({
        "resourceType": "CommunicationRequest",
        "payload": [
            {"contentString": "hello"},
            {"contentAttachment": {"url": "http://x"}},
            {"contentReference": {"reference": "DocumentReference/1"}}
        ]
    });
    check(
        "CommunicationRequest.payload.content.where($this is string)",
        &request,
        &["hello"],
    );
    check(
        "CommunicationRequest.payload.content.ofType(Reference).reference",
        &request,
        &["DocumentReference/1"],
    );
    check(
        "Observation.effective.ofType(dateTime)",
        &obs,
        &["@2016-03-28T10:00:00+02:00"],
    );
}

#[test]
fn extension_by_url_on_elements_and_primitives() {
    let p = patient();
    check(
        "Patient.extension('http://example.org/race').value.code",
        &p,
        &["2106-3"],
    );
    check("Patient.extension('http://example.org/none')", &p, &[]);
    check(
        "Patient.birthDate.extension('http://hl7.org/fhir/StructureDefinition/patient-birthTime').value",
        &p,
        &["@1974-12-25T14:35:45-05:00"],
    );
    check(
        "Patient.name.given.extension('http://example.org/nick').value",
        &p,
        &["Jim"],
    );
    check(
        "Patient.name.given.select($this.hasValue())",
        &p,
        &["true", "true"],
    );
    check("Patient.birthDate.hasValue()", &p, &["true"]);
    check("Patient.name.hasValue()", &p, &["false"]);
}

#[test]
fn resolve_references() {
    let obs = observation();
    check("Observation.subject.resolve() is Patient", &obs, &["true"]);
    check(
        "Observation.subject.where(resolve() is Patient).reference",
        &obs,
        &["Patient/123"],
    );
    check("Observation.subject.where(resolve() is Group)", &obs, &[]);
    check("Observation.performer.resolve().name", &obs, &["Acme"]);
    check(
        "Observation.performer.where(resolve() is Organization).reference",
        &obs,
        &["#org"],
    );
    check(
        "Observation.performer.resolve().ofType(Practitioner).count()",
        &obs,
        &["1"],
    );
    check(
        "Observation.performer.resolve().type().name",
        &obs,
        &["Organization", "Practitioner"],
    );
    let p = patient();
    check(
        "Patient.generalPractitioner.where(resolve() is Organization).reference",
        &p,
        &["Organization/3"],
    );
    check(
        "(Patient.generalPractitioner.resolve() as Practitioner).exists()",
        &p,
        &["true"],
    );
    // Bundle entries resolve through %rootResource, and a caller resolver.
    let target = json!({"resourceType": "Patient", "id": "123", "gender": "male"});
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "http://example.org/fhir/Patient/123", "resource": target.clone()},
        {"fullUrl": "urn:uuid:1", "resource": obs.clone()}
    ]});
    let expr = Expression::parse("Observation.subject.resolve().gender").unwrap();
    let entry_obs = &bundle["entry"][1]["resource"];
    let env = Env::new().with_root_resource(&bundle);
    let out = evaluate(&expr, entry_obs, &env).unwrap();
    assert_eq!(out[0].as_str(), Some("male"));
    let env = Env::new().with_resolver(|r| (r == "Patient/123").then_some(&target));
    let out = evaluate(&expr, &obs, &env).unwrap();
    assert_eq!(out[0].as_str(), Some("male"));
}

#[test]
fn items_expose_json_type_and_values() {
    let obs = observation();
    let expr = Expression::parse("Observation.value.value | Observation.status").unwrap();
    let env = Env::new();
    let out = evaluate(&expr, &obs, &env).unwrap();
    assert_eq!(out[0].type_name(), "decimal");
    assert_eq!(out[0].as_decimal().unwrap().to_string(), "185.50");
    assert!(std::ptr::eq(
        out[0].json().unwrap(),
        &obs["valueQuantity"]["value"]
    ));
    assert_eq!(out[1].type_name(), "code");
    assert_eq!(out[1].as_str(), Some("final"));
    let value = Expression::parse("Observation.value").unwrap();
    let q = evaluate(&value, &obs, &env).unwrap();
    assert_eq!(q[0].as_quantity().unwrap().unit, "[lb_av]");
}

#[test]
fn environment_variables_and_errors() {
    let p = patient();
    let expr = Expression::parse("%limit + 1").unwrap();
    let env = Env::new().with_variable("limit", vec![Item::Integer(41)]);
    assert_eq!(evaluate(&expr, &p, &env).unwrap()[0].as_integer(), Some(42));
    assert!(evaluate(&Expression::parse("%nope").unwrap(), &p, &Env::new()).is_err());
    assert!(Expression::parse("Patient.name.where(").is_err());
    assert!(Expression::parse("Patient.name.frobnicate()").is_err());
    assert!(Expression::parse("1 +").is_err());
    let date = PartialDateTime::parse_date_time("2020-01-02", false).unwrap();
    let env = Env::new().with_now(date);
    check("today() = @2020-01-02 or true", &p, &["true"]);
    let today = Expression::parse("today()").unwrap();
    let out = evaluate(&today, &p, &env).unwrap();
    assert_eq!(out[0].to_literal(), "@2020-01-02");
}

#[test]
fn every_r4_search_parameter_expression_parses() {
    let bundle = crate::definitions::search_parameters_bundle();
    let entries = bundle["entry"].as_array().unwrap();
    let mut parsed = 0;
    let mut failures = Vec::new();
    for entry in entries {
        let Some(expr) = entry["resource"]["expression"].as_str() else {
            continue;
        };
        match Expression::parse(expr) {
            Ok(_) => parsed += 1,
            Err(e) => failures.push(format!("{expr}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(parsed >= 1370, "only {parsed} expressions");
}

#[test]
fn search_parameter_expressions_evaluate_on_typical_resources() {
    // Every expression whose base includes the resource type evaluates
    // without error on a typical instance.
    let bundle = crate::definitions::search_parameters_bundle();
    let entries = bundle["entry"].as_array().unwrap();
    for resource in [patient(), observation()] {
        let rt = resource["resourceType"].as_str().unwrap().to_owned();
        let env = Env::new();
        let mut evaluated = 0;
        for entry in entries {
            let sp = &entry["resource"];
            let applies = sp["base"].as_array().is_some_and(|b| {
                b.iter().any(|t| {
                    matches!(t.as_str(), Some("Resource" | "DomainResource"))
                        || t.as_str() == Some(rt.as_str())
                })
            });
            let Some(expr) = sp["expression"].as_str().filter(|_| applies) else {
                continue;
            };
            let parsed = Expression::parse(expr).unwrap();
            if let Err(e) = evaluate(&parsed, &resource, &env) {
                panic!("{expr}: {e}");
            }
            evaluated += 1;
        }
        assert!(evaluated > 20, "{rt}: {evaluated}");
    }
}

#[test]
fn every_r4_search_parameter_expression_checks_against_its_bases() {
    let bundle = crate::definitions::search_parameters_bundle();
    let mut checked = 0;
    let mut bad = Vec::new();
    for entry in bundle["entry"].as_array().unwrap() {
        let sp = &entry["resource"];
        let Some(expr) = sp["expression"].as_str() else {
            continue;
        };
        let parsed = Expression::parse(expr).unwrap();
        for base in sp["base"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Json::as_str)
        {
            checked += 1;
            if let Err(e) = parsed.check_for_base(base) {
                bad.push(format!("{base}: {expr}: {e}"));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(checked > 1700, "{checked}");
}

#[test]
fn static_check_rejects_impossible_paths() {
    let rejects = |expr: &str, root: &str| {
        let e = Expression::parse(expr).unwrap();
        assert!(e.check(Some(root)).is_err(), "{expr} on {root} should fail");
    };
    let accepts = |expr: &str, root: &str| {
        let e = Expression::parse(expr).unwrap();
        if let Err(err) = e.check(Some(root)) {
            panic!("{expr} on {root}: {err}");
        }
    };
    rejects("Patient.nmae", "Patient");
    rejects("name.given1", "Patient");
    rejects("Encounter.status", "Patient");
    rejects("Observation.valueQuantity", "Observation");
    rejects("(Observation.value as Period).unit", "Observation");
    rejects("Observation.value.ofType(Period).unit", "Observation");
    rejects("Patient.children().first()", "Patient");
    rejects("Patient.name.where(given1 = 'x')", "Patient");
    rejects("Patient.name.as(Frobnicator)", "Patient");
    accepts("Observation.value.unit", "Observation");
    accepts("(Observation.value as Quantity).unit", "Observation");
    accepts("Patient.name.where(given = 'x').family", "Patient");
    accepts("Patient.birthDate.extension('u').value", "Patient");
    accepts("Questionnaire.item.item.item.linkId", "Questionnaire");
    accepts("Bundle.entry.resource.ofType(Patient).name", "Bundle");
    accepts("Patient.contained.name", "Patient");
    accepts("Patient.name.select(given | family).first()", "Patient");
    let union = Expression::parse("Patient.name | Person.name").unwrap();
    assert!(union.check(Some("Patient")).is_err());
    assert!(union.check_for_base("Patient").is_ok());
    assert!(
        Expression::parse("Patient.nmae | Person.name")
            .unwrap()
            .check_for_base("Patient")
            .is_err()
    );
}

#[test]
fn every_r4_invariant_parses_and_core_ones_hold_on_the_suite_inputs() {
    let mut count = 0;
    let mut bad = Vec::new();
    for gz in [
        crate::definitions::PROFILES_TYPES_GZ,
        crate::definitions::PROFILES_RESOURCES_GZ,
    ] {
        let bundle = crate::definitions::parse_gz_json(gz);
        for e in bundle["entry"].as_array().unwrap() {
            let elements = e["resource"]["snapshot"]["element"].as_array();
            for el in elements.into_iter().flatten() {
                for c in el["constraint"].as_array().into_iter().flatten() {
                    if let Some(x) = c["expression"].as_str() {
                        count += 1;
                        if let Err(err) = Expression::parse(x) {
                            bad.push(format!("{x}: {err}"));
                        }
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(count > 8000, "{count}");
    // dom-3 (contained resources are referenced), given R4-style `as()`:
    // it holds on an Observation whose performer is `#org`, and fails on
    // the suite's patient whose reference lacks the `#`.
    let dom3 = Expression::parse(
        "contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().as(canonical) | %resource.descendants().as(uri) | %resource.descendants().as(url))) or descendants().where(reference = '#').exists() or descendants().where(as(canonical) = '#').exists() or descendants().where(as(canonical) = '#').exists()).not()).trace('unmatched', id).empty()",
    )
    .unwrap();
    let obs = observation();
    assert!(evaluate(&dom3, &obs, &Env::new()).is_err());
    let env = Env::new().with_lenient_as(true);
    assert_eq!(
        evaluate(&dom3, &obs, &env).unwrap()[0].as_bool(),
        Some(true)
    );
    let text = include_str!("../../tests/fhirpath/input/patient-container-example.json");
    let patient: Json = serde_json::from_str(text).unwrap();
    assert_eq!(
        evaluate(&dom3, &patient, &env).unwrap()[0].as_bool(),
        Some(false)
    );
}

#[test]
fn expressions_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Expression>();
    assert_send_sync::<Env<'static>>();
}

#[test]
fn large_collections_deduplicate_by_value() {
    // 100 numbers with 50 distinct values, half of them written as decimals.
    let xs: Vec<Item<'static>> = (0..100)
        .map(|i| {
            if i % 2 == 0 {
                Item::Integer(i % 50)
            } else {
                Item::Decimal(Decimal::new(i128::from(i % 50) * 10, 1))
            }
        })
        .collect();
    let ys: Vec<Item<'static>> = (25..75).map(Item::Integer).collect();
    let words: Vec<Item<'static>> = (0..60)
        .map(|i| Item::String(format!("w{}", i % 20).into()))
        .collect();
    let env = Env::new()
        .with_variable("xs", xs)
        .with_variable("ys", ys)
        .with_variable("words", words);
    let run = |src: &str| {
        let e = Expression::parse(src).unwrap();
        let out = evaluate(&e, &Json::Null, &env).unwrap();
        out.iter().map(Item::to_literal).collect::<Vec<_>>()
    };
    assert_eq!(run("%xs.distinct().count()"), ["50"]);
    assert_eq!(run("(%xs | %xs).count()"), ["50"]);
    assert_eq!(run("%xs.isDistinct()"), ["false"]);
    assert_eq!(run("%xs.intersect(%ys).count()"), ["25"]);
    assert_eq!(run("%xs.exclude(%ys).count()"), ["50"]);
    assert_eq!(run("%xs.distinct().subsetOf(%ys)"), ["false"]);
    assert_eq!(run("%ys.where($this < 50).subsetOf(%xs)"), ["true"]);
    assert_eq!(run("%words.union(%words).count()"), ["20"]);
    assert_eq!(run("%words.distinct().first()"), ["w0"]);
    // Equal complex elements in different places collapse too.
    let entries: Vec<Json> = (0..40)
        .map(|i| {
            json!({"resource": {"resourceType": "Observation", "id": format!("o{i}"),
            "code": {"coding": [{"system": "http://loinc.org", "code": format!("c{}", i % 4)}]}}})
        })
        .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": entries});
    check(
        "Bundle.entry.resource.code.distinct().count()",
        &bundle,
        &["4"],
    );
    check(
        "(Bundle.entry.resource.code | Bundle.entry.resource.code).count()",
        &bundle,
        &["4"],
    );
    check(
        "Bundle.entry.resource.id.distinct().count()",
        &bundle,
        &["40"],
    );
    // repeat() keeps distinct nodes even when their values are equal.
    let nested = json!({"resourceType": "Questionnaire", "status": "draft", "item": (0..30)
        .map(|i| json!({"linkId": "same", "type": "group", "item": [{"linkId": format!("c{i}"), "type": "string"}]}))
        .collect::<Vec<_>>()});
    check("Questionnaire.repeat(item).count()", &nested, &["60"]);
    check(
        "Questionnaire.repeat(item).linkId.distinct().count()",
        &nested,
        &["31"],
    );
}

/// Expressions of the official suite with random edits: whatever parses
/// must check and evaluate without panicking (errors are fine).
#[test]
fn mutated_suite_expressions_never_panic() {
    let xml = include_str!("../../tests/fhirpath/tests-fhir-r4.xml");
    let exprs: Vec<String> = xml
        .split("<expression")
        .skip(1)
        .filter_map(|s| {
            let s = &s[s.find('>')? + 1..];
            let text = &s[..s.find("</expression>")?];
            Some(
                text.replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&"),
            )
        })
        .collect();
    let text = include_str!("../../tests/fhirpath/input/patient-example.json");
    let patient: Json = serde_json::from_str(text).unwrap();
    let obs = observation();
    let mut seed: u64 = 12345;
    let mut rnd = || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(seed >> 33).unwrap()
    };
    let alphabet: Vec<char> = "()[]{}.,'`@%$+-*/&|<>=~!0123456789aTZ: \\\\xyz"
        .chars()
        .collect();
    let mut evaluated = 0;
    for round in 0..20 {
        for e in &exprs {
            let mut chars: Vec<char> = e.chars().collect();
            for _ in 0..=rnd() % 3 {
                if chars.is_empty() {
                    break;
                }
                let k = rnd() % chars.len();
                match rnd() % 3 {
                    0 => {
                        chars.remove(k);
                    }
                    1 => chars.insert(k, alphabet[rnd() % alphabet.len()]),
                    _ => chars[k] = alphabet[rnd() % alphabet.len()],
                }
            }
            let src: String = chars.into_iter().collect();
            if let Ok(x) = Expression::parse(&src) {
                evaluated += 1;
                let _ = x.check(Some("Patient"));
                let resource = if round % 2 == 0 { &patient } else { &obs };
                let _ = evaluate(&x, resource, &Env::new());
            }
        }
    }
    assert!(evaluated > 1000, "{evaluated}");
}
