use super::values::parse_near;
use super::*;

const BASE: &str = "https://hie.example.org/fhir";

fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn token_forms() {
    assert_eq!(parse_token("a"), Some(TokenValue::Code("a".into())));
    assert_eq!(
        parse_token("s|a"),
        Some(TokenValue::SystemCode("s".into(), "a".into()))
    );
    assert_eq!(parse_token("|a"), Some(TokenValue::NoSystem("a".into())));
    assert_eq!(parse_token("s|"), Some(TokenValue::System("s".into())));
    assert_eq!(parse_token("|"), None);
    assert_eq!(parse_token("a|b|c"), None);
    assert_eq!(
        parse_token(r"s|a\|b"),
        Some(TokenValue::SystemCode("s".into(), "a|b".into()))
    );
}

#[test]
fn escaped_commas_do_not_split() {
    assert_eq!(
        split_unescaped(r"a\,b,c", ','),
        vec!["a,b".to_string(), "c".to_string()]
    );
}

#[test]
fn unknown_parameters_are_warnings_or_errors() {
    let lenient = parse(
        Registry::global(),
        "Patient",
        &p(&[("bogus", "1")]),
        Strictness::Lenient,
        BASE,
    )
    .unwrap();
    assert_eq!(lenient.warnings.len(), 1);
    let strict = parse(
        Registry::global(),
        "Patient",
        &p(&[("bogus", "1")]),
        Strictness::Strict,
        BASE,
    )
    .unwrap_err();
    assert_eq!(strict.issues[0].expression, vec!["bogus".to_string()]);
}

#[test]
fn identifier_and_id_parse() {
    let parsed = parse(
        Registry::global(),
        "Patient",
        &p(&[("identifier", "urn:s|1,urn:s|2"), ("_id", "a,b")]),
        Strictness::Strict,
        BASE,
    )
    .unwrap();
    let Clause::Match { alternatives, .. } = &parsed.criteria.clauses[0] else {
        panic!("identifier is a match clause")
    };
    assert_eq!(alternatives.len(), 2);
    assert!(
        matches!(&parsed.criteria.clauses[1], Clause::Ids(ids) if ids == &["a".to_string(), "b".to_string()])
    );
}

#[test]
fn reference_forms() {
    let check = |name: &str, value: &str, expected: ReferenceValue| {
        let parsed = parse(
            Registry::global(),
            "Observation",
            &p(&[(name, value)]),
            Strictness::Strict,
            BASE,
        )
        .unwrap();
        let Clause::Match { alternatives, .. } = &parsed.criteria.clauses[0] else {
            panic!("a reference is a match clause")
        };
        assert!(
            matches!(&alternatives[0].cond, Cond::Reference(r) if *r == expected),
            "{name}={value}"
        );
    };
    let local = |t: Option<&str>, id: &str| ReferenceValue::Local {
        target_type: t.map(str::to_owned),
        id: id.to_owned(),
    };
    check("subject", "Patient/1", local(Some("Patient"), "1"));
    check("subject", "1", local(None, "1"));
    check("subject:Patient", "1", local(Some("Patient"), "1"));
    check(
        "subject",
        "https://hie.example.org/fhir/Patient/1",
        local(Some("Patient"), "1"),
    );
    check(
        "subject",
        "Patient/1/_history/2",
        local(Some("Patient"), "1"),
    );
    check(
        "subject",
        "http://other.org/fhir/Patient/1",
        ReferenceValue::Url("http://other.org/fhir/Patient/1".into()),
    );
    let bad = parse(
        Registry::global(),
        "Observation",
        &p(&[("subject", "Nope/1/2")]),
        Strictness::Strict,
        BASE,
    )
    .unwrap_err();
    assert_eq!(bad.issues[0].expression, vec!["subject".to_string()]);
    let bad_modifier = parse(
        Registry::global(),
        "Observation",
        &p(&[("subject:Nope", "1")]),
        Strictness::Strict,
        BASE,
    )
    .unwrap_err();
    assert_eq!(
        bad_modifier.issues[0].expression,
        vec!["subject:Nope".to_string()]
    );
}

#[test]
fn chains_and_has_nest() {
    let parsed = parse(
        Registry::global(),
        "Observation",
        &p(&[("subject:Patient.organization.name", "Kenyatta")]),
        Strictness::Strict,
        BASE,
    )
    .unwrap();
    let Clause::Chain { param, targets } = &parsed.criteria.clauses[0] else {
        panic!("a chain")
    };
    assert_eq!(param, "subject");
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].0, "Patient");
    assert!(
        matches!(&targets[0].1.clauses[0], Clause::Chain { param, .. } if param == "organization")
    );
    // Without :Type, every target type with a `name` parameter.
    let parsed = parse(
        Registry::global(),
        "Observation",
        &p(&[("subject.name", "x")]),
        Strictness::Strict,
        BASE,
    )
    .unwrap();
    let Clause::Chain { targets, .. } = &parsed.criteria.clauses[0] else {
        panic!("a chain")
    };
    let types: Vec<&str> = targets.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        vec!["Patient", "Location"],
        "Group and Device have no name parameter"
    );
    let parsed = parse(
        Registry::global(),
        "Patient",
        &p(&[(
            "_has:Observation:patient:_has:Provenance:target:agent",
            "Practitioner/1",
        )]),
        Strictness::Strict,
        BASE,
    )
    .unwrap();
    let Clause::Has {
        source_type, inner, ..
    } = &parsed.criteria.clauses[0]
    else {
        panic!("a _has")
    };
    assert_eq!(source_type, "Observation");
    assert!(
        matches!(&inner.clauses[0], Clause::Has { source_type, .. } if source_type == "Provenance")
    );
    for bad in ["_has:Observation:patient", "_has:Nope:patient:code"] {
        let e = parse(
            Registry::global(),
            "Patient",
            &p(&[(bad, "x")]),
            Strictness::Lenient,
            BASE,
        )
        .unwrap_err();
        assert_eq!(e.issues[0].expression, vec![bad.to_string()]);
    }
    let e = parse(
        Registry::global(),
        "Patient",
        &p(&[("_has:Observation:code:code", "x")]),
        Strictness::Strict,
        BASE,
    )
    .unwrap_err();
    assert_eq!(e.issues[0].code, IssueCode::NotSupported);
}

#[test]
fn token_modifiers_and_composites() {
    let one = |name: &str, value: &str| {
        parse(
            Registry::global(),
            "Patient",
            &p(&[(name, value)]),
            Strictness::Strict,
            BASE,
        )
        .map(|p| p.criteria.clauses.into_iter().next().unwrap())
    };
    assert!(matches!(
        one("gender:not", "male").unwrap(),
        Clause::Match { negated: true, .. }
    ));
    assert!(
        matches!(one("identifier:text", "Medical").unwrap(), Clause::Match { table: "search_string", ref alternatives, .. }
            if alternatives[0].param == "identifier:text")
    );
    let Clause::Match { alternatives, .. } = one("identifier:of-type", "http://t|MR|123").unwrap()
    else {
        panic!()
    };
    assert!(
        matches!(&alternatives[0].cond, Cond::Token(TokenValue::SystemCode(s, c)) if s == "http://t" && c == "MR|123")
    );
    assert!(one("identifier:of-type", "MR|123").is_err());
    assert!(one("birthdate:not", "2000").is_err(), ":not is for tokens");
    let Clause::Match {
        table,
        alternatives,
        ..
    } = parse(
        Registry::global(),
        "Observation",
        &p(&[(
            "code-value-quantity",
            "http://loinc.org|8480-6$gt100,8462-4$lt90",
        )]),
        Strictness::Strict,
        BASE,
    )
    .unwrap()
    .criteria
    .clauses
    .remove(0)
    else {
        panic!()
    };
    assert_eq!(table, "search_quantity");
    assert_eq!(
        alternatives[0].param,
        "code-value-quantity$http://loinc.org|8480-6"
    );
    assert_eq!(alternatives[1].param, "code-value-quantity$8462-4");
    let bad = parse(
        Registry::global(),
        "Observation",
        &p(&[("code-value-quantity", "8480-6")]),
        Strictness::Strict,
        BASE,
    )
    .unwrap_err();
    assert_eq!(
        bad.issues[0].expression,
        vec!["code-value-quantity".to_string()]
    );
}

#[test]
fn near_values() {
    assert_eq!(
        parse_near("-1.29|36.82|5|km"),
        Some(Near {
            latitude: -1.29,
            longitude: 36.82,
            km: 5.0
        })
    );
    assert_eq!(parse_near("-1.29|36.82|500|m").map(|n| n.km), Some(0.5));
    assert_eq!(
        parse_near("-1.29|36.82").map(|n| n.km),
        Some(DEFAULT_NEAR_KM)
    );
    assert_eq!(parse_near("91|0|1|km"), None);
    assert_eq!(parse_near("1|2|3|parsecs"), None);
    assert_eq!(parse_near("x|2"), None);
}
