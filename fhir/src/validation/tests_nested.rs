//! Tests: one table row per rule for nested content (empty values, contained
//! and nested resources, extensions, narrative, references, many errors).

use super::tests::check;
use super::tests_rules::{obs, pat, table};
use serde_json::json;

#[test]
fn empty_values() {
    table(vec![
        (
            pat(json!({"maritalStatus": {}})),
            &["Patient.maritalStatus"],
        ),
        (pat(json!({"name": []})), &["Patient.name"]),
        (pat(json!({"name": [{}]})), &["Patient.name[0]"]),
        (
            pat(json!({"name": [{"family": ""}]})),
            &["Patient.name[0].family"],
        ),
        (pat(json!({"gender": null})), &["Patient.gender"]),
        (pat(json!({"name": [null]})), &["Patient.name[0]"]),
        (pat(json!({"_birthDate": {}})), &["Patient.birthDate"]),
        (
            pat(json!({"name": [{"_given": []}]})),
            &["Patient.name[0].given"],
        ),
        (pat(json!({"meta": {"tag": []}})), &["Patient.meta.tag"]),
    ]);
}

#[test]
fn contained_resources() {
    table(vec![
        (
            obs(json!({"contained": [{"resourceType": "Patient", "id": "p", "foo": 1}]})),
            &["Observation.contained[0].foo"],
        ),
        (
            obs(json!({"contained": [{"resourceType": "Patient", "id": "p",
                "contained": [{"resourceType": "Organization", "id": "o"}]}]})),
            &["Observation.contained[0].contained"],
        ),
        (
            obs(json!({"contained": [{"id": "p"}]})),
            &["Observation.contained[0].resourceType"],
        ),
        (
            obs(json!({"contained": [{"resourceType": "Nope", "id": "p"}]})),
            &["Observation.contained[0].resourceType"],
        ),
        (
            obs(json!({"contained": [{"resourceType": "Observation", "id": "o"}]})),
            &[
                "Observation.contained[0].status",
                "Observation.contained[0].code",
            ],
        ),
        (
            obs(json!({"contained": {"resourceType": "Patient"}})),
            &["Observation.contained"],
        ),
        (
            obs(json!({"contained": ["Patient/1"]})),
            &["Observation.contained[0]"],
        ),
        (
            obs(
                json!({"contained": [{"resourceType": "Patient", "birthDate": "x"}, {"resourceType": "Patient", "gender": 1}]}),
            ),
            &[
                "Observation.contained[0].birthDate",
                "Observation.contained[1].gender",
            ],
        ),
    ]);
}

#[test]
fn nested_resources() {
    let bad_patient = json!({"resourceType": "Patient", "birthDate": "1990-13-01"});
    table(vec![
        (
            json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Patient"}}, {"resource": bad_patient}]}),
            &["Bundle.entry[1].resource.birthDate"],
        ),
        (
            json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Bundle", "type": "collection",
                   "entry": [{"resource": {"resourceType": "Patient", "gender": ["male"]}}]}}]}),
            &["Bundle.entry[0].resource.entry[0].resource.gender"],
        ),
        (
            json!({"resourceType": "Bundle", "type": "transaction-response", "entry": [{"response": {"status": "400",
                   "outcome": {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}}}]}),
            &["Bundle.entry[0].response.outcome.issue[0].code"],
        ),
        (
            json!({"resourceType": "Parameters", "parameter": [{"name": "p", "resource": {"resourceType": "Patient", "foo": 1}},
                   {"name": "q", "valueString": "x", "part": [{"name": "r", "resource": {"resourceType": "Nope"}}]}]}),
            &[
                "Parameters.parameter[0].resource.foo",
                "Parameters.parameter[1].part[0].resource.resourceType",
            ],
        ),
        (
            json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": [bad_patient]}]}),
            &["Bundle.entry[0].resource"],
        ),
    ]);
}

#[test]
fn extensions() {
    table(vec![
        (
            pat(json!({"extension": [{"valueString": "a"}]})),
            &["Patient.extension[0].url"],
        ),
        (
            pat(
                json!({"extension": [{"url": "http://x", "valueString": "a", "extension": [{"url": "y", "valueString": "b"}]}]}),
            ),
            &["Patient.extension[0]"],
        ),
        (
            pat(json!({"extension": [{"url": "http://x"}]})),
            &["Patient.extension[0]"],
        ),
        (
            pat(json!({"extension": [{"url": "http://x", "valueFoo": 1}]})),
            &["Patient.extension[0].valueFoo"],
        ),
        (
            pat(
                json!({"extension": [{"url": "http://x", "valueNarrative": {"status": "empty", "div": "<div>x</div>"}}]}),
            ),
            &["Patient.extension[0].valueNarrative"],
        ),
        (
            pat(
                json!({"extension": [{"url": "http://x", "extension": [{"url": "a", "valueDate": "bad"}]}]}),
            ),
            &["Patient.extension[0].extension[0].valueDate"],
        ),
        (
            pat(
                json!({"contact": [{"modifierExtension": [{"valueBoolean": true}], "gender": "male"}]}),
            ),
            &["Patient.contact[0].modifierExtension[0].url"],
        ),
        (
            pat(
                json!({"name": [{"family": "x", "extension": [{"url": "http://x", "valueHumanName": {"family": "y", "bad": 1}}]}]}),
            ),
            &["Patient.name[0].extension[0].valueHumanName.bad"],
        ),
        (
            obs(
                json!({"valueQuantity": {"value": 1, "extension": [{"url": "http://x", "valueString": ""}]}}),
            ),
            &["Observation.valueQuantity.extension[0].valueString"],
        ),
        (
            pat(
                json!({"modifierExtension": [{"url": "http://x", "valueCodeableConcept": {"text": "x"}}]}),
            ),
            &[],
        ),
    ]);
}

#[test]
fn narrative() {
    table(vec![
        (
            pat(json!({"text": {"status": "generated", "div": "<p>hi</p>"}})),
            &["Patient.text.div"],
        ),
        (
            pat(json!({"text": {"status": "generated", "div": "<div>hi"}})),
            &["Patient.text.div"],
        ),
        (
            pat(json!({"text": {"status": "generated", "div": "<divx>hi</divx></div>"}})),
            &["Patient.text.div"],
        ),
        (
            pat(json!({"text": {"status": "generated", "div": 5}})),
            &["Patient.text.div"],
        ),
        (
            pat(json!({"text": {"status": "generated"}})),
            &["Patient.text.div"],
        ),
        (
            pat(json!({"text": {"div": "<div>x</div>"}})),
            &["Patient.text.status"],
        ),
        (
            pat(json!({"text": {"status": "bogus", "div": "<div>x</div>"}})),
            &["Patient.text.status"],
        ),
        (
            pat(
                json!({"text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">ok</div>"}}),
            ),
            &[],
        ),
    ]);
}

#[test]
fn references() {
    let subject = |r: &str| obs(json!({"subject": {"reference": r}}));
    table(vec![
        (subject("Patient/"), &["Observation.subject.reference"]),
        (subject("Patient/a b"), &["Observation.subject.reference"]),
        (subject("patient/123"), &["Observation.subject.reference"]),
        (subject("Patient"), &["Observation.subject.reference"]),
        (subject("urn:uuid:zzz"), &["Observation.subject.reference"]),
        (subject("#a b"), &["Observation.subject.reference"]),
        (
            subject("Patient/1/_history"),
            &["Observation.subject.reference"],
        ),
        (subject(""), &["Observation.subject.reference"]),
        (subject("Patient/123"), &[]),
        (subject("Patient/123/_history/2"), &[]),
        (subject("#p1"), &[]),
        (
            subject("urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"),
            &[],
        ),
        (subject("urn:oid:1.2.3.4"), &[]),
        (subject("http://other.org/fhir/Patient/9"), &[]),
        (subject("Patient?identifier=http://x|1"), &[]),
        (
            obs(
                json!({"performer": [{"reference": "Practitioner/1"}, {"reference": "Practitioner/x y"}]}),
            ),
            &["Observation.performer[1].reference"],
        ),
        (obs(json!({"subject": {"display": "Amina"}})), &[]),
    ]);
}

#[test]
fn reports_all_errors_at_once() {
    check(
        pat(json!({
            "foo": 1,
            "birthDate": "2023-02-30",
            "gender": ["female"],
            "name": [{"given": ["", "Ok"], "period": {"start": "2020-01-01T10:00"}}],
            "contact": [{"name": {}, "relationship": {"text": "x"}}],
            "managingOrganization": {"reference": "Organization/a b"}
        })),
        &[
            "Patient.foo",
            "Patient.birthDate",
            "Patient.gender",
            "Patient.name[0].given[0]",
            "Patient.name[0].period.start",
            "Patient.contact[0].name",
            "Patient.contact[0].relationship",
            "Patient.managingOrganization.reference",
        ],
    );
}
