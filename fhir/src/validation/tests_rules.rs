//! Tests: one table row per validation rule, each naming the exact FHIRPath
//! expressions of the errors expected.

use super::tests::check;
use serde_json::{Value, json};

pub(super) fn table(rows: Vec<(Value, &[&str])>) {
    for (resource, expected) in rows {
        check(resource, expected);
    }
}

/// A minimal valid Observation plus the given fields.
pub(super) fn obs(extra: Value) -> Value {
    let mut o = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}});
    if let (Some(o), Value::Object(extra)) = (o.as_object_mut(), extra) {
        o.extend(extra);
    }
    o
}

pub(super) fn pat(extra: Value) -> Value {
    let mut p = json!({"resourceType": "Patient"});
    if let (Some(p), Value::Object(extra)) = (p.as_object_mut(), extra) {
        p.extend(extra);
    }
    p
}

/// A Patient with one extension holding `value`.
fn ext(value: Value) -> Value {
    let mut e = json!({"url": "http://example.org/x"});
    if let (Some(e), Value::Object(value)) = (e.as_object_mut(), value) {
        e.extend(value);
    }
    pat(json!({"extension": [e]}))
}

#[test]
fn resource_type() {
    table(vec![
        (json!({"id": "x"}), &["resourceType"]),
        (json!({"resourceType": "Foo"}), &["resourceType"]),
        (json!({"resourceType": "patient"}), &["resourceType"]),
        (json!({"resourceType": "DomainResource"}), &["resourceType"]),
        (json!({"resourceType": 7}), &["resourceType"]),
        (json!({"resourceType": "Patient"}), &[]),
    ]);
    assert_eq!(super::validate_resource(&json!([1])).len(), 1);
}

#[test]
fn unknown_elements() {
    table(vec![
        (pat(json!({"foo": 1})), &["Patient.foo"]),
        (
            pat(json!({"name": [{"family": "x", "foo": "y"}]})),
            &["Patient.name[0].foo"],
        ),
        (
            pat(json!({"contact": [{"gender": "male", "foo": 1}]})),
            &["Patient.contact[0].foo"],
        ),
        (
            obs(json!({"valueQuantity": {"value": 1, "bogus": 2}})),
            &["Observation.valueQuantity.bogus"],
        ),
        (
            pat(json!({"extension": [{"url": "http://x", "valueString": "a", "foo": 1}]})),
            &["Patient.extension[0].foo"],
        ),
        (pat(json!({"_foo": {"id": "a"}})), &["Patient._foo"]),
        (
            pat(json!({"name": [{"resourceType": "HumanName"}]})),
            &["Patient.name[0].resourceType"],
        ),
        (pat(json!({"Gender": "male"})), &["Patient.Gender"]),
        (
            json!({"resourceType": "Questionnaire", "status": "draft", "item": [{"linkId": "1", "type": "group",
                   "item": [{"linkId": "1.1", "type": "string", "foo": true}]}]}),
            &["Questionnaire.item[0].item[0].foo"],
        ),
        (
            json!({"resourceType": "Timing", "repeat": {"count": 1}}),
            &["resourceType"],
        ),
        (
            json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": {"reference": "Patient/1"},
                   "medicationCodeableConcept": {"text": "x"}, "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "oops": 1}}}]}),
            &["MedicationRequest.dosageInstruction[0].timing.repeat.oops"],
        ),
    ]);
}

#[test]
fn cardinality() {
    table(vec![
        (
            json!({"resourceType": "Observation", "code": {"text": "x"}}),
            &["Observation.status"],
        ),
        (
            json!({"resourceType": "Observation"}),
            &["Observation.status", "Observation.code"],
        ),
        (
            pat(json!({"link": [{"type": "seealso"}]})),
            &["Patient.link[0].other"],
        ),
        (pat(json!({"link": [{}]})), &["Patient.link[0]"]),
        (
            pat(json!({"birthDate": ["2000-01-01"]})),
            &["Patient.birthDate"],
        ),
        (pat(json!({"gender": ["male"]})), &["Patient.gender"]),
        (
            pat(json!({"maritalStatus": [{"text": "M"}]})),
            &["Patient.maritalStatus"],
        ),
        (pat(json!({"name": {"family": "x"}})), &["Patient.name"]),
        (
            pat(json!({"name": [{"given": "Amina"}]})),
            &["Patient.name[0].given"],
        ),
        (
            pat(json!({"identifier": {"value": "1"}, "telecom": {"value": "1"}})),
            &["Patient.identifier", "Patient.telecom"],
        ),
        (
            pat(json!({"extension": {"url": "http://x", "valueString": "a"}})),
            &["Patient.extension"],
        ),
        // Only `_status` (extensions, no value) satisfies min = 1.
        (
            json!({"resourceType": "Observation", "code": {"text": "x"},
                   "_status": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}}),
            &[],
        ),
    ]);
}

#[test]
fn choice_types() {
    table(vec![
        (obs(json!({"valueFoo": 1})), &["Observation.valueFoo"]),
        (
            obs(json!({"valueHumanName": {"family": "x"}})),
            &["Observation.valueHumanName"],
        ),
        (
            pat(json!({"deceasedString": "yes"})),
            &["Patient.deceasedString"],
        ),
        (
            obs(json!({"valueString": "a", "valueBoolean": true})),
            &["Observation.valueBoolean"],
        ),
        (
            pat(json!({"deceasedBoolean": true, "_deceasedDateTime": {"id": "x"}})),
            &["Patient.deceasedDateTime"],
        ),
        (
            obs(json!({"valueString": "a", "_valueString": {"id": "s"}})),
            &[],
        ),
        (
            obs(json!({"valuequantity": {"value": 1}})),
            &["Observation.valuequantity"],
        ),
        (obs(json!({"value": 1})), &["Observation.value"]),
        (
            obs(
                json!({"effectivePeriod": {"start": "2020"}, "effectiveInstant": "2020-01-01T00:00:00Z"}),
            ),
            &["Observation.effectiveInstant"],
        ),
    ]);
}

#[test]
fn primitive_formats() {
    table(vec![
        (
            pat(json!({"birthDate": "2023-02-30"})),
            &["Patient.birthDate"],
        ),
        (
            pat(json!({"birthDate": "1990-1-1"})),
            &["Patient.birthDate"],
        ),
        (
            pat(json!({"birthDate": "2020-01-01T10:00:00Z"})),
            &["Patient.birthDate"],
        ),
        (pat(json!({"birthDate": 1990})), &["Patient.birthDate"]),
        (
            obs(json!({"effectiveDateTime": "2020-01-01T10:00:00"})),
            &["Observation.effectiveDateTime"],
        ),
        (
            obs(json!({"effectiveDateTime": "2020-01-01T10:00Z"})),
            &["Observation.effectiveDateTime"],
        ),
        (
            obs(json!({"effectiveDateTime": "2020-01-01T10:00:00.5+03:00"})),
            &[],
        ),
        (
            obs(json!({"issued": "2020-01-01"})),
            &["Observation.issued"],
        ),
        (
            obs(json!({"issued": "2020-01-01T10:00:00"})),
            &["Observation.issued"],
        ),
        (
            obs(json!({"valueQuantity": {"value": "1.5"}})),
            &["Observation.valueQuantity.value"],
        ),
        (
            obs(json!({"valueInteger": 1.5})),
            &["Observation.valueInteger"],
        ),
        (
            obs(json!({"valueInteger": 2147483648u64})),
            &["Observation.valueInteger"],
        ),
        (
            obs(json!({"valueBoolean": "true"})),
            &["Observation.valueBoolean"],
        ),
        (
            obs(json!({"valueTime": "25:00:00"})),
            &["Observation.valueTime"],
        ),
        (pat(json!({"active": 1})), &["Patient.active"]),
        (pat(json!({"id": "a_b"})), &["Patient.id"]),
        (pat(json!({"id": "x".repeat(65)})), &["Patient.id"]),
        (
            pat(json!({"implicitRules": "http://a b"})),
            &["Patient.implicitRules"],
        ),
        (pat(json!({"language": "en  US"})), &["Patient.language"]),
        (pat(json!({"gender": " male"})), &["Patient.gender"]),
        (
            pat(json!({"name": [{"family": ""}]})),
            &["Patient.name[0].family"],
        ),
        (
            pat(json!({"name": [{"family": "a\u{0}b"}]})),
            &["Patient.name[0].family"],
        ),
        (
            pat(json!({"name": [{"given": ["Amina", ""]}]})),
            &["Patient.name[0].given[1]"],
        ),
        (
            pat(json!({"name": [{"given": ["Amina", 5]}]})),
            &["Patient.name[0].given[1]"],
        ),
        (
            pat(json!({"photo": [{"data": "abc"}]})),
            &["Patient.photo[0].data"],
        ),
        (
            pat(json!({"photo": [{"size": 0, "url": "http://x/y z"}]})),
            &["Patient.photo[0].url"],
        ),
        (pat(json!({"multipleBirthInteger": -1})), &[]),
        (
            ext(json!({"valuePositiveInt": 0})),
            &["Patient.extension[0].valuePositiveInt"],
        ),
        (
            ext(json!({"valueUnsignedInt": -1})),
            &["Patient.extension[0].valueUnsignedInt"],
        ),
        (
            ext(json!({"valueOid": "1.2.3"})),
            &["Patient.extension[0].valueOid"],
        ),
        (
            ext(json!({"valueUuid": "urn:uuid:not-a-uuid"})),
            &["Patient.extension[0].valueUuid"],
        ),
        (
            ext(json!({"valueCanonical": "http://x y"})),
            &["Patient.extension[0].valueCanonical"],
        ),
        (
            ext(json!({"valueMarkdown": ""})),
            &["Patient.extension[0].valueMarkdown"],
        ),
        (
            ext(json!({"valueInstant": "2020-02-30T00:00:00Z"})),
            &["Patient.extension[0].valueInstant"],
        ),
        (
            pat(json!({"extension": [{"url": "http://x y", "valueString": "a"}]})),
            &["Patient.extension[0].url"],
        ),
        (
            json!({"resourceType": "Basic", "code": {"text": "x"}, "created": "2024-02-29"}),
            &[],
        ),
    ]);
}

#[test]
fn primitive_extensions() {
    let e = json!([{"url": "http://example.org/x", "valueString": "y"}]);
    table(vec![
        (
            pat(json!({"birthDate": "1990", "_birthDate": {"extension": e}})),
            &[],
        ),
        (pat(json!({"_birthDate": {"extension": e}})), &[]),
        (
            pat(json!({"_birthDate": {"extension": [{"valueString": "y"}]}})),
            &["Patient.birthDate.extension[0].url"],
        ),
        (
            pat(json!({"birthDate": "1990", "_birthDate": [{"id": "a"}]})),
            &["Patient.birthDate"],
        ),
        (
            pat(json!({"birthDate": "1990", "_birthDate": "x"})),
            &["Patient.birthDate"],
        ),
        (
            pat(json!({"_birthDate": {"foo": 1}})),
            &["Patient.birthDate.foo"],
        ),
        (
            pat(json!({"name": [{"given": ["a", null], "_given": [null, {"extension": e}]}]})),
            &[],
        ),
        (
            pat(json!({"name": [{"_given": [{"id": "g1"}, {"extension": e}]}]})),
            &[],
        ),
        (
            pat(json!({"name": [{"given": ["a", null], "_given": [null]}]})),
            &["Patient.name[0].given", "Patient.name[0].given[1]"],
        ),
        (
            pat(json!({"name": [{"given": ["a", null]}]})),
            &["Patient.name[0].given[1]"],
        ),
        (
            pat(json!({"name": [{"given": ["a", null], "_given": [null, null]}]})),
            &["Patient.name[0].given[1]"],
        ),
        (
            pat(json!({"name": [{"_given": [null]}]})),
            &["Patient.name[0].given[0]"],
        ),
        (
            pat(json!({"name": [{"given": ["a"], "_given": {"id": "x"}}]})),
            &["Patient.name[0].given"],
        ),
        (
            pat(json!({"name": [{"text": "A", "_text": {"id": "t"}}]})),
            &[],
        ),
        (pat(json!({"_name": [{"id": "x"}]})), &["Patient._name"]),
        (
            pat(json!({"name": [{"_id": {"id": "x"}}]})),
            &["Patient.name[0]._id"],
        ),
        (
            pat(
                json!({"extension": [{"url": "http://x", "_url": {"id": "u"}, "valueString": "a"}]}),
            ),
            &["Patient.extension[0]._url"],
        ),
        (pat(json!({"_id": {"id": "x"}})), &["Patient._id"]),
        (
            pat(
                json!({"text": {"status": "generated", "div": "<div>x</div>", "_div": {"id": "d"}}}),
            ),
            &["Patient.text._div"],
        ),
    ]);
}
