//! URI search values for `:above` and `:below` (search.html#uri): the
//! hierarchical prefixes of a URL.

/// The URLs `uri` is "below", shortest first, ending with `uri` itself:
/// `http://acme.org/fhir/ValueSet/123` gives `http://acme.org`,
/// `http://acme.org/fhir`, `http://acme.org/fhir/ValueSet` and the URL.
///
/// The indexer stores these for a uri/canonical value, so that
/// `url:below=X` is a lookup of `X` (without a trailing `/`) among them;
/// for `url:above=X` the search looks up the stored values among
/// `uri_prefixes(X)`. A canonical `|version`, a `?query` and a `#fragment`
/// are not part of the path: they appear only in the last element (the
/// whole value). Empty path segments (`//`, a trailing `/`) are skipped.
/// Text is kept as written (no case or percent-encoding normalisation).
/// URIs without `scheme://` (`urn:oid:1.2.3`, relative references such as
/// `ValueSet/123`) have no hierarchy used here: the result is the value
/// alone. An empty string gives an empty list.
pub fn uri_prefixes(uri: &str) -> Vec<String> {
    if uri.is_empty() {
        return Vec::new();
    }
    let base = uri.split(['|', '?', '#']).next().unwrap_or(uri);
    let Some(scheme_end) = base.find("://") else {
        return vec![uri.to_owned()];
    };
    let after = scheme_end + 3;
    let (authority, path) = match base[after..].find('/') {
        Some(i) => base.split_at(after + i),
        None => (base, ""),
    };
    let mut out = Vec::new();
    if authority.len() > after {
        out.push(authority.to_owned());
    }
    let mut current = authority.to_owned();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        current.push('/');
        current.push_str(segment);
        out.push(current.clone());
    }
    if out.last().map(String::as_str) != Some(uri) {
        out.push(uri.to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expected: &[&str]) {
        assert_eq!(uri_prefixes(input), expected, "uri_prefixes({input:?})");
    }

    #[test]
    fn prefixes() {
        check(
            "http://acme.org/fhir/ValueSet/123",
            &[
                "http://acme.org",
                "http://acme.org/fhir",
                "http://acme.org/fhir/ValueSet",
                "http://acme.org/fhir/ValueSet/123",
            ],
        );
        check(
            "http://hl7.org/fhir/StructureDefinition/Patient|4.0.1",
            &[
                "http://hl7.org",
                "http://hl7.org/fhir",
                "http://hl7.org/fhir/StructureDefinition",
                "http://hl7.org/fhir/StructureDefinition/Patient",
                "http://hl7.org/fhir/StructureDefinition/Patient|4.0.1",
            ],
        );
        check("http://acme.org", &["http://acme.org"]);
        check("http://acme.org/", &["http://acme.org", "http://acme.org/"]);
        check(
            "https://acme.org/a/",
            &[
                "https://acme.org",
                "https://acme.org/a",
                "https://acme.org/a/",
            ],
        );
        check(
            "https://acme.org//a",
            &[
                "https://acme.org",
                "https://acme.org/a",
                "https://acme.org//a",
            ],
        );
        check(
            "http://acme.org:8080/fhir?x=1/2",
            &[
                "http://acme.org:8080",
                "http://acme.org:8080/fhir",
                "http://acme.org:8080/fhir?x=1/2",
            ],
        );
        check(
            "http://acme.org/a#frag/x",
            &[
                "http://acme.org",
                "http://acme.org/a",
                "http://acme.org/a#frag/x",
            ],
        );
        check("file:///tmp/x", &["file:///tmp", "file:///tmp/x"]);
        check("urn:oid:1.2.3.4", &["urn:oid:1.2.3.4"]);
        check(
            "urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7",
            &["urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7"],
        );
        check("ValueSet/123", &["ValueSet/123"]);
        check("", &[]);
    }

    #[test]
    fn below_and_above_use() {
        let stored = uri_prefixes("http://acme.org/fhir/ValueSet/123");
        assert!(stored.iter().any(|p| p == "http://acme.org/fhir"));
        assert!(!stored.iter().any(|p| p == "http://acme.org/fh"));
        let search = uri_prefixes("http://acme.org/fhir/ValueSet/123/_history/5");
        assert!(search.iter().any(|p| p == "http://acme.org/fhir/ValueSet"));
        assert!(
            !search
                .iter()
                .any(|p| p == "http://acme.org/fhir/CodeSystem")
        );
    }
}
