//! Unit tests for `_summary` and `_elements`. Every expected output is written
//! by hand from the R4 definitions (profiles-resources.json /
//! profiles-types.json `isSummary` and `min`), quoted next to each case.

use super::*;

fn subsetted() -> Value {
    json!({"system": SUBSETTED_SYSTEM, "code": SUBSETTED_CODE})
}

fn narrative() -> Value {
    json!({"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Amina Otieno</div>"})
}

fn birth_time() -> Value {
    json!({"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                          "valueDateTime": "1985-02-28T14:35:45-05:00"}]})
}

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"versionId": "2", "lastUpdated": "2024-05-01T10:00:00Z"},
        "text": narrative(),
        "contained": [{"resourceType": "Organization", "id": "org", "name": "Acme"}],
        "extension": [{"url": "http://example.org/ext", "valueString": "x"}],
        "modifierExtension": [{"url": "http://example.org/mod", "valueBoolean": true}],
        "identifier": [{"id": "i1", "use": "official", "system": "urn:oid:1.2.3", "value": "123",
                        "extension": [{"url": "http://example.org/i", "valueString": "y"}]}],
        "active": true,
        "name": [{"id": "n1", "use": "official", "family": "Otieno",
                  "_family": {"extension": [{"url": "http://example.org/f", "valueString": "z"}]},
                  "given": ["Amina", "Wanjiru"]},
                 {"extension": [{"url": "http://example.org/only-ext", "valueString": "w"}]}],
        "telecom": [{"system": "phone", "value": "+254 700 000000", "use": "home", "rank": 1}],
        "gender": "female",
        "birthDate": "1985-02-28",
        "_birthDate": birth_time(),
        "deceasedBoolean": false,
        "address": [{"use": "home", "line": ["534 Erewhon St"], "city": "Kisumu"}],
        "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}]},
        "multipleBirthBoolean": false,
        "photo": [{"contentType": "image/png", "data": "iVBORw0KGgo="}],
        "contact": [{"relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"}]}],
                     "name": {"family": "Otieno", "given": ["Juma"]}}],
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "sw"}]}, "preferred": true}],
        "generalPractitioner": [{"reference": "Practitioner/1"}],
        "managingOrganization": {"reference": "#org", "display": "Acme"},
        "link": [{"modifierExtension": [{"url": "http://example.org/link-mod", "valueBoolean": true}],
                  "other": {"reference": "Patient/p2"}, "type": "seealso"}]
    })
}

fn observation() -> Value {
    json!({
        "resourceType": "Observation",
        "id": "o1",
        "text": narrative(),
        "status": "final",
        "_status": {"extension": [{"url": "http://example.org/s", "valueString": "v"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}], "text": "Weight"},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-05-01T09:30:00Z",
        "valueQuantity": {"value": 72.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
        "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "N"}]}],
        "note": [{"text": "after breakfast"}],
        "referenceRange": [{"low": {"value": 50, "unit": "kg"}}],
        "component": [{"code": {"text": "fat"},
                       "valueQuantity": {"value": 21, "unit": "%"},
                       "interpretation": [{"text": "normal"}]}]
    })
}

#[test]
fn parses_the_five_modes() {
    for (text, mode) in [
        ("true", SummaryMode::True),
        ("text", SummaryMode::Text),
        ("data", SummaryMode::Data),
        ("count", SummaryMode::Count),
        ("false", SummaryMode::False),
    ] {
        assert_eq!(SummaryMode::parse(text), Ok(mode));
        assert_eq!(text.parse::<SummaryMode>(), Ok(mode));
        assert_eq!(mode.as_str(), text);
        assert_eq!(mode.to_string(), text);
    }
    for bad in ["", "TRUE", "yes", " true", "summary"] {
        let error = SummaryMode::parse(bad).unwrap_err();
        assert_eq!(error.value, bad);
        assert!(error.message.contains("_summary"), "{error}");
        assert!(error.to_string().contains("true, text, data, count, false"));
    }
}

#[test]
fn patient_summary_true() {
    // Patient: id, meta, identifier, active, name, telecom, gender, birthDate,
    // deceased[x], address, managingOrganization, link are isSummary; text,
    // contained, extension, modifierExtension (R4 snapshot: isSummary false),
    // maritalStatus, multipleBirth[x], photo, contact, communication and
    // generalPractitioner are not. Inside the datatypes, `id` and
    // `extension` are not summary (Element); Identifier.use/system/value,
    // HumanName.use/family/given, ContactPoint.system/value/use/rank,
    // Address.use/line/city, Reference.reference/display and
    // Patient.link.modifierExtension/other/type are.
    let expected = json!({
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"versionId": "2", "lastUpdated": "2024-05-01T10:00:00Z", "tag": [subsetted()]},
        "identifier": [{"use": "official", "system": "urn:oid:1.2.3", "value": "123"}],
        "active": true,
        // The second name held only a (non-summary) extension: nothing is left.
        "name": [{"use": "official", "family": "Otieno",
                  "_family": {"extension": [{"url": "http://example.org/f", "valueString": "z"}]},
                  "given": ["Amina", "Wanjiru"]}],
        "telecom": [{"system": "phone", "value": "+254 700 000000", "use": "home", "rank": 1}],
        "gender": "female",
        "birthDate": "1985-02-28",
        "_birthDate": birth_time(),
        "deceasedBoolean": false,
        "address": [{"use": "home", "line": ["534 Erewhon St"], "city": "Kisumu"}],
        "managingOrganization": {"reference": "#org", "display": "Acme"},
        "link": [{"modifierExtension": [{"url": "http://example.org/link-mod", "valueBoolean": true}],
                  "other": {"reference": "Patient/p2"}, "type": "seealso"}]
    });
    let summary = summarize(&patient(), SummaryMode::True);
    assert_eq!(summary, expected);
    // Key order follows the input.
    let keys: Vec<&str> = summary
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(&keys[..4], ["resourceType", "id", "meta", "identifier"]);
    // `count` has no resource form of its own: the `true` form.
    assert_eq!(summarize(&patient(), SummaryMode::Count), expected);
}

#[test]
fn observation_summary_true() {
    // Observation: status, code, subject, effective[x], value[x], component
    // are isSummary; text, category, interpretation, note, referenceRange are
    // not. Observation.component.code and .value[x] are isSummary,
    // .interpretation is not. Quantity.value/unit/system/code and
    // CodeableConcept.coding/text, Coding.system/code/display are summary.
    // No `meta` in the input: it is created after `id` for the tag.
    let expected = json!({
        "resourceType": "Observation",
        "id": "o1",
        "meta": {"tag": [subsetted()]},
        "status": "final",
        "_status": {"extension": [{"url": "http://example.org/s", "valueString": "v"}]},
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}], "text": "Weight"},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-05-01T09:30:00Z",
        "valueQuantity": {"value": 72.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
        "component": [{"code": {"text": "fat"}, "valueQuantity": {"value": 21, "unit": "%"}}]
    });
    let summary = summarize(&observation(), SummaryMode::True);
    assert_eq!(summary, expected);
    let keys: Vec<&str> = summary
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(&keys[..4], ["resourceType", "id", "meta", "status"]);
}

#[test]
fn attachment_data_is_not_summary() {
    // DocumentReference.status, .content, .content.attachment are isSummary;
    // Attachment.data is the one datatype property that is not
    // (Attachment.contentType, .url, .title are).
    let document = json!({
        "resourceType": "DocumentReference",
        "status": "current",
        "content": [{"attachment": {"contentType": "text/plain", "data": "SGVsbG8=",
                                    "url": "http://example.org/doc.txt", "title": "Hello"}}]
    });
    assert_eq!(
        summarize(&document, SummaryMode::True),
        json!({
            "resourceType": "DocumentReference",
            "meta": {"tag": [subsetted()]},
            "status": "current",
            "content": [{"attachment": {"contentType": "text/plain",
                                        "url": "http://example.org/doc.txt", "title": "Hello"}}]
        })
    );
}

#[test]
fn nothing_removed_means_no_tag() {
    // Only summary elements: the resource comes back as it was.
    let small = json!({"resourceType": "Patient", "id": "p", "gender": "male",
                       "name": [{"family": "Kamau"}]});
    assert_eq!(summarize(&small, SummaryMode::True), small);
    assert_eq!(summarize(&small, SummaryMode::Data), small);
    assert_eq!(
        select_elements(&small, &["name", "gender"]),
        (small.clone(), vec![])
    );
}

#[test]
fn subsetted_tag_is_not_duplicated() {
    let mut tagged = observation();
    tagged["meta"] =
        json!({"tag": [{"system": "http://example.org/tags", "code": "keep"}, subsetted()]});
    let summary = summarize(&tagged, SummaryMode::True);
    assert_eq!(
        summary["meta"],
        json!({"tag": [{"system": "http://example.org/tags", "code": "keep"}, subsetted()]})
    );
    // Summarizing the summary, or asking for its elements, adds nothing.
    assert_eq!(summarize(&summary, SummaryMode::True), summary);
    let (selected, _) = select_elements(&summary, &["value"]);
    assert_eq!(selected["meta"]["tag"].as_array().unwrap().len(), 2);
    // A meta without tags gets the array.
    let mut meta_only = observation();
    meta_only["meta"] = json!({"versionId": "7"});
    assert_eq!(
        summarize(&meta_only, SummaryMode::Data)["meta"],
        json!({"versionId": "7", "tag": [subsetted()]})
    );
}

#[test]
fn summary_data_removes_text_only() {
    let mut expected = patient();
    let object = expected.as_object_mut().unwrap();
    object.shift_remove("text");
    object["meta"]["tag"] = json!([subsetted()]);
    assert_eq!(summarize(&patient(), SummaryMode::Data), expected);
}

#[test]
fn summary_text_keeps_text_id_meta_and_mandatory() {
    // Observation.status and Observation.code are 1..1; `_status` goes with
    // `status`.
    assert_eq!(
        summarize(&observation(), SummaryMode::Text),
        json!({
            "resourceType": "Observation",
            "id": "o1",
            "meta": {"tag": [subsetted()]},
            "text": narrative(),
            "status": "final",
            "_status": {"extension": [{"url": "http://example.org/s", "valueString": "v"}]},
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}], "text": "Weight"}
        })
    );
    // Patient has no mandatory top-level element.
    assert_eq!(
        summarize(&patient(), SummaryMode::Text),
        json!({
            "resourceType": "Patient",
            "id": "p1",
            "meta": {"versionId": "2", "lastUpdated": "2024-05-01T10:00:00Z", "tag": [subsetted()]},
            "text": narrative()
        })
    );
}

#[test]
fn summary_false_and_unknown_types_change_nothing() {
    assert_eq!(summarize(&patient(), SummaryMode::False), patient());
    let odd = json!({"resourceType": "NotAType", "text": narrative(), "x": 1});
    assert_eq!(summarize(&odd, SummaryMode::True), odd);
    assert_eq!(summarize(&json!("text"), SummaryMode::True), json!("text"));
    assert_eq!(
        summarize(&odd, SummaryMode::Data),
        json!({"resourceType": "NotAType", "meta": {"tag": [subsetted()]}, "x": 1})
    );
}

#[test]
fn bundle_entries_are_kept_whole() {
    // Bundle.type, .entry, .entry.fullUrl, .entry.resource are isSummary;
    // the entry's resource is its own resource and is not cut.
    let bundle = json!({
        "resourceType": "Bundle", "type": "collection",
        "entry": [{"fullUrl": "urn:uuid:1", "resource": observation()}]
    });
    assert_eq!(summarize(&bundle, SummaryMode::True), bundle);
}

#[test]
fn elements_value_and_status() {
    // `value` selects `value[x]` (here valueQuantity, with its Quantity whole);
    // Observation.code is 1..1 so it is kept unrequested; `_status` goes with
    // `status`.
    let expected = json!({
        "resourceType": "Observation",
        "id": "o1",
        "meta": {"tag": [subsetted()]},
        "status": "final",
        "_status": {"extension": [{"url": "http://example.org/s", "valueString": "v"}]},
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}], "text": "Weight"},
        "valueQuantity": {"value": 72.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
    });
    assert_eq!(
        select_elements(&observation(), &["value", "status"]),
        (expected.clone(), vec![])
    );
    // The JSON name of the choice type works too; another type selects nothing.
    assert_eq!(
        select_elements(&observation(), &["valueQuantity", " status "]),
        (expected.clone(), vec![])
    );
    let (only_string, unknown) = select_elements(&observation(), &["valueString", "status"]);
    assert!(unknown.is_empty());
    assert!(only_string.get("valueQuantity").is_none());
    assert_eq!(only_string["status"], "final");
}

#[test]
fn elements_keep_whole_values_and_primitive_companions() {
    let (selected, unknown) = select_elements(&patient(), &["name", "birthDate", "text"]);
    assert!(unknown.is_empty());
    assert_eq!(
        selected,
        json!({
            "resourceType": "Patient",
            "id": "p1",
            "meta": {"versionId": "2", "lastUpdated": "2024-05-01T10:00:00Z", "tag": [subsetted()]},
            "text": narrative(),
            "name": patient()["name"],
            "birthDate": "1985-02-28",
            "_birthDate": birth_time()
        })
    );
}

#[test]
fn elements_report_unknown_names() {
    let (selected, unknown) = select_elements(
        &observation(),
        &[
            "foo",
            "value",
            "",
            "foo",
            "name.family",
            "_status",
            "resourceType",
            "valueFoo",
        ],
    );
    assert_eq!(
        unknown,
        ["foo", "name.family", "_status", "resourceType", "valueFoo"]
    );
    assert!(selected.get("valueQuantity").is_some());
    assert!(selected.get("subject").is_none());
    // Patient has no `value`; every name unknown still yields id/meta.
    let (selected, unknown) = select_elements(&patient(), &["value"]);
    assert_eq!(unknown, ["value"]);
    assert_eq!(
        selected,
        json!({
            "resourceType": "Patient",
            "id": "p1",
            "meta": {"versionId": "2", "lastUpdated": "2024-05-01T10:00:00Z", "tag": [subsetted()]}
        })
    );
    // An unknown resource type: unchanged, every name unknown.
    let odd = json!({"resourceType": "NotAType", "x": 1});
    assert_eq!(
        select_elements(&odd, &["x"]),
        (odd.clone(), vec!["x".to_owned()])
    );
}
