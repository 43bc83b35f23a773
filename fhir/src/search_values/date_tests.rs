//! Tests of the date normalisation and the prefix rules (search.html#date).

#![allow(clippy::unwrap_used)]

use super::*;
use crate::fhirpath::{Env, Expression, evaluate};
use chrono::DateTime;
use serde_json::json;

/// Micros of an RFC 3339 instant, or the open ends `-inf`/`+inf`.
fn t(s: &str) -> i64 {
    match s {
        "-inf" => NEG_INFINITY,
        "+inf" => POS_INFINITY,
        _ => DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros(),
    }
}

fn r(start: &str, end: &str) -> DateRange {
    DateRange::new(t(start), t(end))
}

#[track_caller]
fn check(input: &str, expected: Option<(&str, &str)>) {
    let got = parse_date_value(input);
    assert_eq!(
        got,
        expected.map(|(s, e)| r(s, e)),
        "parse_date_value({input:?})"
    );
}

#[test]
fn value_ranges_at_their_precision() {
    check(
        "1980",
        Some(("1980-01-01T00:00:00Z", "1981-01-01T00:00:00Z")),
    );
    check(
        "2020-02",
        Some(("2020-02-01T00:00:00Z", "2020-03-01T00:00:00Z")),
    );
    check(
        "2021-02",
        Some(("2021-02-01T00:00:00Z", "2021-03-01T00:00:00Z")),
    );
    check(
        "2020-12",
        Some(("2020-12-01T00:00:00Z", "2021-01-01T00:00:00Z")),
    );
    check(
        "2020-02-29",
        Some(("2020-02-29T00:00:00Z", "2020-03-01T00:00:00Z")),
    );
    check(
        "2000-02-29",
        Some(("2000-02-29T00:00:00Z", "2000-03-01T00:00:00Z")),
    );
    check("1900-02-29", None);
    check("2021-02-29", None);
    check("2020-04-31", None);
    check(
        "2020-12-31",
        Some(("2020-12-31T00:00:00Z", "2021-01-01T00:00:00Z")),
    );
    check(
        "2020-03-04T10Z",
        Some(("2020-03-04T10:00:00Z", "2020-03-04T11:00:00Z")),
    );
    check(
        "2020-03-04T10:00Z",
        Some(("2020-03-04T10:00:00Z", "2020-03-04T10:01:00Z")),
    );
    check(
        "2020-03-04T10:00:00Z",
        Some(("2020-03-04T10:00:00Z", "2020-03-04T10:00:01Z")),
    );
    check(
        "2020-03-04T10:00:00.1Z",
        Some(("2020-03-04T10:00:00.1Z", "2020-03-04T10:00:00.2Z")),
    );
    check(
        "2020-03-04T10:00:00.120Z",
        Some(("2020-03-04T10:00:00.12Z", "2020-03-04T10:00:00.121Z")),
    );
    check(
        "2020-03-04T10:00:00.123456Z",
        Some(("2020-03-04T10:00:00.123456Z", "2020-03-04T10:00:00.123457Z")),
    );
    check(
        "2020-03-04T10:00:00.1234567Z",
        Some(("2020-03-04T10:00:00.123456Z", "2020-03-04T10:00:00.123457Z")),
    );
    check(
        "2020-03-04T23:59:59.999Z",
        Some(("2020-03-04T23:59:59.999Z", "2020-03-05T00:00:00Z")),
    );
    check(
        "2020-12-31T23:59:59Z",
        Some(("2020-12-31T23:59:59Z", "2021-01-01T00:00:00Z")),
    );
}

#[test]
fn value_ranges_with_time_zones() {
    check(
        "2020-02-29T23:30:00-05:00",
        Some(("2020-03-01T04:30:00Z", "2020-03-01T04:30:01Z")),
    );
    check(
        "2020-03-01T02:00:00+05:30",
        Some(("2020-02-29T20:30:00Z", "2020-02-29T20:30:01Z")),
    );
    check(
        "2020-01-01T00:00+14:00",
        Some(("2019-12-31T10:00:00Z", "2019-12-31T10:01:00Z")),
    );
    check(
        "2020-12-31T23:30:00-05:00",
        Some(("2021-01-01T04:30:00Z", "2021-01-01T04:30:01Z")),
    );
    check(
        "2024-02-28T22:00:00-03:00",
        Some(("2024-02-29T01:00:00Z", "2024-02-29T01:00:01Z")),
    );
    check(
        "2023-02-28T22:00:00-03:00",
        Some(("2023-03-01T01:00:00Z", "2023-03-01T01:00:01Z")),
    );
    check(
        "2020-01-01T00:00:00-00:00",
        Some(("2020-01-01T00:00:00Z", "2020-01-01T00:00:01Z")),
    );
    check(
        "2020-01-01T00:00:00+00:00",
        Some(("2020-01-01T00:00:00Z", "2020-01-01T00:00:01Z")),
    );
    check(
        "2020-06-15T12:00:00",
        Some(("2020-06-15T12:00:00Z", "2020-06-15T12:00:01Z")),
    );
    check(
        "2020-06-15T12:00:00.5",
        Some(("2020-06-15T12:00:00.5Z", "2020-06-15T12:00:00.6Z")),
    );
    check("2020-06-15T12:00:00+0200", None);
    check("2020-06-15T12:00:00+24:00", None);
    check("2020-06-15T12:00:00 02:00", None);
}

#[test]
fn value_rejects_malformed() {
    for bad in [
        "",
        "20",
        "20201",
        "2020-1",
        "2020-13",
        "2020-00",
        "2020-01-1",
        "2020-01-00",
        "2020T10:00Z",
        "2020-01T10:00Z",
        "2020-01-01T",
        "2020-01-01T25:00Z",
        "2020-01-01T10:60Z",
        "2020-01-01T10:00:60Z",
        "2020-01-01T10:00:00.Z",
        "2020-01-01Z",
        "2020-01-01T10:00Zjunk",
        "abcd",
        "2020/01/01",
    ] {
        check(bad, None);
    }
}

#[track_caller]
fn check_param(input: &str, expected: Option<(Prefix, &str, &str)>) {
    let got = parse_date_param(input).ok();
    assert_eq!(
        got,
        expected.map(|(p, s, e)| (p, r(s, e))),
        "parse_date_param({input:?})"
    );
}

#[test]
fn params_with_prefixes() {
    check_param(
        "2020",
        Some((Prefix::Eq, "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z")),
    );
    check_param(
        "eq2020-03",
        Some((Prefix::Eq, "2020-03-01T00:00:00Z", "2020-04-01T00:00:00Z")),
    );
    check_param(
        "ne2020-03-04",
        Some((Prefix::Ne, "2020-03-04T00:00:00Z", "2020-03-05T00:00:00Z")),
    );
    check_param(
        "gt2020-03-04T10:00Z",
        Some((Prefix::Gt, "2020-03-04T10:00:00Z", "2020-03-04T10:01:00Z")),
    );
    check_param(
        "lt2020-03-04T10:00:00+01:00",
        Some((Prefix::Lt, "2020-03-04T09:00:00Z", "2020-03-04T09:00:01Z")),
    );
    check_param(
        "ge1980",
        Some((Prefix::Ge, "1980-01-01T00:00:00Z", "1981-01-01T00:00:00Z")),
    );
    check_param(
        "le1980-12",
        Some((Prefix::Le, "1980-12-01T00:00:00Z", "1981-01-01T00:00:00Z")),
    );
    check_param(
        "sa2020-02-29",
        Some((Prefix::Sa, "2020-02-29T00:00:00Z", "2020-03-01T00:00:00Z")),
    );
    check_param(
        "eb2020-02-29T23:30:00-05:00",
        Some((Prefix::Eb, "2020-03-01T04:30:00Z", "2020-03-01T04:30:01Z")),
    );
    check_param(
        "ap2020-06-15T12:00:00.250Z",
        Some((
            Prefix::Ap,
            "2020-06-15T12:00:00.25Z",
            "2020-06-15T12:00:00.251Z",
        )),
    );
    check_param("xx2020", None);
    check_param("eq", None);
    check_param("ge", None);
    check_param("gte2020", None);
    check_param("EQ2020", None);
    check_param("2021-02-29", None);
    assert!(
        parse_date_param("junk")
            .unwrap_err()
            .to_string()
            .contains("junk")
    );
}

/// Whether a value range matches `param` (parsed) with `now` fixed at
/// 2020-01-01T00:00:00Z.
#[track_caller]
fn check_match(param: &str, value: (&str, &str), expected: bool) {
    let (prefix, search) = parse_date_param(param).unwrap();
    let now = t("2020-01-01T00:00:00Z");
    let got = date_matches(prefix, search, r(value.0, value.1), now);
    assert_eq!(got, expected, "{param} against {value:?}");
}

#[test]
fn prefix_semantics() {
    let day = ("2020-03-04T00:00:00Z", "2020-03-05T00:00:00Z");
    let minute = ("2020-03-04T10:00:00Z", "2020-03-04T10:01:00Z");
    let open_end = ("2020-03-04T10:00:00Z", "+inf");
    let open_start = ("-inf", "2020-03-04T10:00:00Z");
    let straddle = ("2020-03-03T12:00:00Z", "2020-03-04T12:00:00Z");
    // eq: search range contains value range
    check_match("eq2020", minute, true);
    check_match("eq2020-03-04", minute, true);
    check_match("eq2020-03-04", day, true);
    check_match("eq2020-03-04T10:00Z", day, false);
    check_match("eq2020-03-04", straddle, false);
    check_match("eq2020-03-04", open_end, false);
    check_match("2020-03-05", minute, false);
    check_match("eq2020-03-04T10:00Z", minute, true);
    check_match("eq2020-03-04T05:00-05:00", minute, true);
    // ne: negation of eq
    check_match("ne2020-03-04", minute, false);
    check_match("ne2020-03-04", straddle, true);
    check_match("ne2020-03-05", minute, true);
    check_match("ne2020-03-04T10:00Z", day, true);
    // gt: value extends above the search range
    check_match("gt2020-03-04", minute, false);
    check_match("gt2020-03-03", minute, true);
    check_match("gt2020-03-04T09:59Z", minute, true);
    check_match("gt2020-03-04T10:00Z", minute, false);
    check_match("gt2020-03-04T10:00:30Z", minute, true);
    check_match("gt2020-03-04", open_end, true);
    check_match("gt2020-03-04", open_start, false);
    check_match("gt2020-03-03", straddle, true);
    // lt: value extends below the search range
    check_match("lt2020-03-04", minute, false);
    check_match("lt2020-03-05", minute, true);
    check_match("lt2020-03-04T10:01Z", minute, true);
    check_match("lt2020-03-04T10:00Z", minute, false);
    check_match("lt2020-03-04T10:00:30Z", minute, true);
    check_match("lt2020-03-04", straddle, true);
    check_match("lt2000", open_start, true);
    check_match("lt2030", open_end, true);
    check_match("lt2020-03-04T10:00Z", open_end, false);
    // ge: gt or eq
    check_match("ge2020-03-04", minute, true);
    check_match("ge2020-03-04T10:00Z", minute, true);
    check_match("ge2020-03-04T10:01Z", minute, false);
    check_match("ge2020-03-05", day, false);
    check_match("ge2020-03-04", straddle, false);
    check_match("ge2020-03-03", straddle, true);
    check_match("ge2020-03-04", open_start, false);
    // le: lt or eq
    check_match("le2020-03-04", minute, true);
    check_match("le2020-03-04T10:00Z", minute, true);
    check_match("le2020-03-04T09:59Z", minute, false);
    check_match("le2020-03-03", day, false);
    check_match("le2020-03-04", straddle, true);
    check_match("le2020-03-04", open_end, false);
    // sa: starts after the end of the search range (no overlap)
    check_match("sa2020-03-03", minute, true);
    check_match("sa2020-03-03", day, true);
    check_match("sa2020-03-04", minute, false);
    check_match("sa2020-03-04T09:59Z", minute, true);
    check_match("sa2020-03-04T10:00Z", minute, false);
    check_match("sa2020-03-03", straddle, false);
    check_match("sa2020-03-03", open_end, true);
    check_match("sa2020-03-03", open_start, false);
    // eb: ends before the start of the search range (no overlap)
    check_match("eb2020-03-05", minute, true);
    check_match("eb2020-03-04", minute, false);
    check_match("eb2020-03-04T10:01Z", minute, true);
    check_match("eb2020-03-04T10:00Z", minute, false);
    check_match("eb2020-03-04T10:00Z", open_start, true);
    check_match("eb2030", open_end, false);
    // ap: within 10% of the gap to now (2020-01-01); the search day
    // 2020-11-01 is 305 days away, so about 30.5 days either side
    check_match(
        "ap2020-11-01",
        ("2020-10-02T00:00:00Z", "2020-10-02T00:00:01Z"),
        true,
    );
    check_match(
        "ap2020-11-01",
        ("2020-09-30T00:00:00Z", "2020-09-30T00:00:01Z"),
        false,
    );
    check_match(
        "ap2020-11-01",
        ("2020-12-01T12:00:00Z", "2020-12-01T12:00:01Z"),
        true,
    );
    check_match(
        "ap2020-11-01",
        ("2020-12-03T00:00:00Z", "2020-12-03T00:00:01Z"),
        false,
    );
    // 2010-01-01 is ten years before now: about a year either side
    check_match(
        "ap2010-01-01",
        ("2009-02-01T00:00:00Z", "2009-02-02T00:00:00Z"),
        true,
    );
    check_match(
        "ap2010-01-01",
        ("2008-12-01T00:00:00Z", "2008-12-02T00:00:00Z"),
        false,
    );
    // now inside the search range: plain overlap
    check_match(
        "ap2020",
        ("2019-12-31T23:59:59Z", "2020-01-01T00:00:01Z"),
        true,
    );
    check_match(
        "ap2020",
        ("2019-12-31T23:59:59Z", "2020-01-01T00:00:00Z"),
        false,
    );
    check_match("ap2020", open_start, true);
    check_match("ap2020", ("2021-01-01T00:00:00Z", "+inf"), false);
}

fn ranges(resource: serde_json::Value, path: &str) -> Vec<Option<DateRange>> {
    let expr = Expression::parse(path).unwrap();
    let items = evaluate(&expr, &resource, &Env::new()).unwrap();
    items.iter().map(date_range).collect()
}

#[test]
fn element_ranges() {
    let patient = json!({"resourceType": "Patient", "birthDate": "1980",
                         "name": [{"family": "X", "period": {"start": "2001-02-03"}}],
                         "deceasedDateTime": "2020-03-04T10:00Z"});
    assert_eq!(
        ranges(patient.clone(), "Patient.birthDate"),
        [Some(r("1980-01-01T00:00:00Z", "1981-01-01T00:00:00Z"))]
    );
    assert_eq!(
        ranges(patient.clone(), "Patient.deceased"),
        [Some(r("2020-03-04T10:00:00Z", "2020-03-04T10:01:00Z"))]
    );
    assert_eq!(
        ranges(patient.clone(), "Patient.name.period"),
        [Some(r("2001-02-03T00:00:00Z", "+inf"))]
    );
    assert_eq!(ranges(patient.clone(), "Patient.name"), [None]);
    assert_eq!(
        ranges(patient.clone(), "@2014-01-25T14:30"),
        [Some(r("2014-01-25T14:30:00Z", "2014-01-25T14:31:00Z"))]
    );
    assert_eq!(
        ranges(patient, "@2014-01"),
        [Some(r("2014-01-01T00:00:00Z", "2014-02-01T00:00:00Z"))]
    );
    let enc = json!({"resourceType": "Encounter", "status": "finished", "class": {"code": "x"},
                     "period": {"end": "2020-02-29T23:30:00-05:00"}});
    assert_eq!(
        ranges(enc, "Encounter.period"),
        [Some(r("-inf", "2020-03-01T04:30:01Z"))]
    );
    let enc = json!({"resourceType": "Encounter", "status": "finished", "class": {"code": "x"},
                     "period": {"start": "2020-01", "end": "2020-02-15"}});
    assert_eq!(
        ranges(enc, "Encounter.period"),
        [Some(r("2020-01-01T00:00:00Z", "2020-02-16T00:00:00Z"))]
    );
    let enc = json!({"resourceType": "Encounter", "status": "finished", "class": {"code": "x"},
                     "period": {"id": "p"}});
    assert_eq!(ranges(enc, "Encounter.period"), [None]);
    let req = json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                     "subject": {"reference": "Patient/1"},
                     "medicationCodeableConcept": {"text": "x"},
                     "dosageInstruction": [
                        {"timing": {"event": ["2020-05-02", "2020-05-01T08:00:00Z", "2020-06"]}},
                        {"timing": {"repeat": {"boundsPeriod": {"start": "2020-01-01", "end": "2020-01-31"}}}},
                        {"timing": {"repeat": {"boundsDuration": {"value": 5, "unit": "d"}}}}
                     ],
                     "authoredOn": "2020-04-30T12:00:00.5+02:00"});
    assert_eq!(
        ranges(req.clone(), "MedicationRequest.dosageInstruction.timing"),
        [
            Some(r("2020-05-01T08:00:00Z", "2020-07-01T00:00:00Z")),
            Some(r("2020-01-01T00:00:00Z", "2020-02-01T00:00:00Z")),
            None,
        ]
    );
    assert_eq!(
        ranges(req, "MedicationRequest.authoredOn"),
        [Some(r("2020-04-30T10:00:00.5Z", "2020-04-30T10:00:00.6Z"))]
    );
    let obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                     "issued": "2020-03-04T10:00:00.123Z", "valueString": "2020"});
    assert_eq!(
        ranges(obs.clone(), "Observation.issued"),
        [Some(r(
            "2020-03-04T10:00:00.123Z",
            "2020-03-04T10:00:00.124Z"
        ))]
    );
    assert_eq!(ranges(obs, "Observation.value"), [None]);
}
