//! SMART scope parsing and `allows`, one case a line.

use super::*;

/// `expected` is the scope's v2 rendering and version, or "-" when the text
/// is not a SMART clinical-data scope.
fn check_parse(text: &str, expected: &str) {
    let actual = match SmartScope::parse(text) {
        Some(scope) => format!("{scope} {:?}", scope.version),
        None => "-".to_owned(),
    };
    assert_eq!(actual, expected, "parsing {text:?}");
}

#[test]
fn parses_v2_scopes() {
    check_parse("patient/Observation.rs", "patient/Observation.rs V2");
    check_parse("user/*.cruds", "user/*.cruds V2");
    check_parse("system/Patient.c", "system/Patient.c V2");
    check_parse("system/Patient.cd", "system/Patient.cd V2");
    check_parse("user/Encounter.us", "user/Encounter.us V2");
    check_parse(
        "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
        "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory V2",
    );
    check_parse("user/Condition.r?a=b&c=d", "user/Condition.r?a=b&c=d V2");
}

#[test]
fn parses_v1_scopes_as_their_v2_equivalents() {
    check_parse("patient/*.read", "patient/*.rs V1");
    check_parse("user/Patient.write", "user/Patient.cud V1");
    check_parse("user/*.*", "user/*.cruds V1");
    check_parse("system/*.read", "system/*.rs V1");
    check_parse("system/Observation.*", "system/Observation.cruds V1");
}

#[test]
fn rejects_what_is_not_a_smart_resource_scope() {
    check_parse("openid", "-");
    check_parse("fhirUser", "-");
    check_parse("launch", "-");
    check_parse("launch/patient", "-");
    check_parse("offline_access", "-");
    check_parse("*.*", "-");
    check_parse("patient/*", "-");
    check_parse("practitioner/*.rs", "-");
    check_parse("patient/observation.rs", "-");
    check_parse("patient/Obs-ervation.rs", "-");
    check_parse("patient/.rs", "-");
    check_parse("patient/Observation.", "-");
    check_parse("patient/Observation.sr", "-");
    check_parse("patient/Observation.rr", "-");
    check_parse("patient/Observation.x", "-");
    check_parse("patient/Observation.Read", "-");
    check_parse("patient/Observation.read?code=1", "-");
    check_parse("patient/Observation.rs?", "-");
    check_parse("Patient/Observation.rs", "-");
}

/// `interaction` is one letter of `cruds`; `expected` the granting context
/// or "-".
fn check_allows(scopes: &str, interaction: char, resource_type: &str, expected: &str) {
    let interaction = match interaction {
        'c' => Interaction::Create,
        'r' => Interaction::Read,
        'u' => Interaction::Update,
        'd' => Interaction::Delete,
        's' => Interaction::Search,
        other => panic!("no interaction {other}"),
    };
    let scopes = Scopes::parse(scopes);
    let granted = scopes.granted_by(interaction, resource_type);
    let actual = granted.map_or("-", Context::as_str);
    assert_eq!(
        actual, expected,
        "{scopes:?} {interaction:?} {resource_type}"
    );
    assert_eq!(scopes.allows(interaction, resource_type), granted.is_some());
}

#[test]
fn allows_follows_permissions_types_and_contexts() {
    check_allows("system/*.cruds", 'c', "Patient", "system");
    check_allows("system/*.cruds", 'd', "Observation", "system");
    check_allows("system/Patient.rs", 'r', "Patient", "system");
    check_allows("system/Patient.rs", 's', "Patient", "system");
    check_allows("system/Patient.rs", 'u', "Patient", "-");
    check_allows("system/Patient.rs", 'r', "Observation", "-");
    check_allows("patient/*.rs", 'r', "Observation", "patient");
    check_allows("patient/*.rs", 'c', "Observation", "-");
    check_allows("user/Patient.c", 'c', "Patient", "user");
    check_allows("user/Patient.c", 'r', "Patient", "-");
    check_allows("", 'r', "Patient", "-");
    check_allows("openid fhirUser launch", 'r', "Patient", "-");
}

#[test]
fn allows_reads_v1_read_as_rs_and_write_as_cud() {
    check_allows("system/*.read", 'r', "Patient", "system");
    check_allows("system/*.read", 's', "Patient", "system");
    check_allows("system/*.read", 'c', "Patient", "-");
    check_allows("system/*.read", 'u', "Patient", "-");
    check_allows("user/Patient.write", 'c', "Patient", "user");
    check_allows("user/Patient.write", 'u', "Patient", "user");
    check_allows("user/Patient.write", 'd', "Patient", "user");
    check_allows("user/Patient.write", 'r', "Patient", "-");
    check_allows("user/Patient.write", 's', "Patient", "-");
    check_allows("patient/*.*", 'd', "Condition", "patient");
}

#[test]
fn the_broadest_granting_context_is_reported() {
    check_allows(
        "patient/*.rs user/Observation.r",
        'r',
        "Observation",
        "user",
    );
    check_allows(
        "patient/*.rs user/Observation.r",
        's',
        "Observation",
        "patient",
    );
    check_allows("system/Patient.r patient/*.rs", 'r', "Patient", "system");
    check_allows("user/*.rs system/Patient.c", 'r', "Patient", "user");
}

#[test]
fn query_restricted_scopes_allow_nothing_and_are_reported() {
    check_allows(
        "patient/Observation.rs?category=laboratory",
        'r',
        "Observation",
        "-",
    );
    check_allows(
        "patient/Observation.rs?category=laboratory patient/Observation.s",
        's',
        "Observation",
        "patient",
    );
    let scopes = Scopes::parse("patient/Observation.rs?category=laboratory user/*.rs");
    let unsupported: Vec<String> = scopes.unsupported().map(|s| s.to_string()).collect();
    assert_eq!(unsupported, ["patient/Observation.rs?category=laboratory"]);
}

#[test]
fn a_scope_list_keeps_the_other_scopes_as_written() {
    let scopes = Scopes::parse("openid  system/*.rs launch/patient *.* offline_access");
    let smart: Vec<String> = scopes.smart().iter().map(|s| s.to_string()).collect();
    assert_eq!(smart, ["system/*.rs"]);
    assert_eq!(
        scopes.other(),
        ["openid", "launch/patient", "*.*", "offline_access"]
    );
    assert_eq!(
        Scopes::from_items(["system/*.rs", "openid"]),
        Scopes::parse("system/*.rs openid")
    );
}
