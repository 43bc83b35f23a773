//! SNOMED CT RF2 snapshots: the hand-written fixture and a large synthetic
//! one.

use super::{TempDir, assert_error, copy_fixture, fixture, load, load_error};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use terminology::formats::rf2::{self, Relationships, Rf2Options, synthetic};
use terminology::formats::{Format, Options};
use terminology::model::{PropertyValue, Record};

const ANEMIA: &str = "8000003005";
const IRON_DEFICIENCY_ANEMIA: &str = "8000004004";
const BLEEDING: &str = "8000005003";
const ANEMIA_DUE_TO_BLOOD_LOSS: &str = "8000006002";
const OLD_CONCEPT: &str = "8000009008";
const SKIN_COLOR: &str = "8000012006";
const PALE_SKIN: &str = "8000014009";
const FRENCH: &str = "7100001001";
const CHRONIC_ANEMIA: &str = "8000015008";
const ANEMIA_REFSET: &str = "8000016004";
const BLEEDING_REFSET: &str = "8000017000";
const CONCEPT_FILE: &str = "Snapshot/Terminology/sct2_Concept_Snapshot_INT_20250101.txt";

fn release() -> PathBuf {
    fixture("rf2/SnomedCT_TestRF2_PRODUCTION_20250101T120000Z")
}

fn with(rf2: Rf2Options) -> Options {
    Options {
        rf2,
        ..Options::default()
    }
}

fn snomed() -> super::Loaded {
    load(Format::Snomed, &release(), &Options::default())
}

#[test]
fn header_version_is_the_edition_uri() {
    let loaded = snomed();
    assert_eq!(loaded.header.url, "http://snomed.info/sct");
    assert_eq!(
        loaded.header.version.as_deref(),
        Some("http://snomed.info/sct/900000000000207008/version/20250101")
    );
}

#[test]
fn display_is_the_us_preferred_synonym_else_the_fsn() {
    let loaded = snomed();
    assert_eq!(loaded.concepts().len(), 18);
    assert_eq!(loaded.display(ANEMIA), Some("Anemia"));
    assert_eq!(loaded.display(SKIN_COLOR), Some("Skin color"));
    assert_eq!(loaded.display("138875005"), Some("SNOMED CT Concept"));
    // Only an acceptable synonym: the FSN.
    assert_eq!(loaded.display(PALE_SKIN), Some("Pale skin (finding)"));
    // The Delta folder is not read.
    assert!(!loaded.concepts().contains_key("not-an-id"));
}

#[test]
fn another_language_refset_gives_other_displays() {
    let gb = with(Rf2Options {
        language_refset: rf2::GB_ENGLISH.to_owned(),
        ..Rf2Options::default()
    });
    let loaded = load(Format::Snomed, &release(), &gb);
    assert_eq!(loaded.display(ANEMIA), Some("Anaemia"));
    assert_eq!(loaded.display(SKIN_COLOR), Some("Skin colour"));
    assert_eq!(loaded.display(BLEEDING), Some("Bleeding"));
    let french = with(Rf2Options {
        language_refset: FRENCH.to_owned(),
        ..Rf2Options::default()
    });
    let loaded = load(Format::Snomed, &release(), &french);
    assert_eq!(
        loaded.display(IRON_DEFICIENCY_ANEMIA),
        Some("Anémie ferriprive")
    );
    // Untranslated concepts keep their FSN.
    assert_eq!(
        loaded.display(SKIN_COLOR),
        Some("Skin color (observable entity)")
    );
}

#[test]
fn inactive_concepts_keep_their_status_through_every_record() {
    let loaded = snomed();
    assert!(!loaded.active(OLD_CONCEPT));
    assert_eq!(loaded.display(OLD_CONCEPT), Some("Old anemia concept"));
    assert!(loaded.active(ANEMIA));
    assert_eq!(
        loaded.property(OLD_CONCEPT, "inactive"),
        Some(&PropertyValue::Boolean(true))
    );
    // Its only is-a relationship is inactive.
    assert!(loaded.parents(OLD_CONCEPT).is_empty());
}

#[test]
fn active_inferred_is_a_relationships_give_the_hierarchy() {
    let loaded = snomed();
    assert_eq!(loaded.parents(ANEMIA_DUE_TO_BLOOD_LOSS), [ANEMIA, BLEEDING]);
    assert_eq!(loaded.parents(ANEMIA), ["8000002000"]);
    // The finding site of iron deficiency anemia is not an is-a edge.
    assert_eq!(loaded.parents(IRON_DEFICIENCY_ANEMIA), [ANEMIA]);
    assert_eq!(loaded.edges(), 17);
    let stated = with(Rf2Options {
        relationships: Relationships::Stated,
        ..Rf2Options::default()
    });
    let loaded = load(Format::Snomed, &release(), &stated);
    assert_eq!(loaded.parents(ANEMIA_DUE_TO_BLOOD_LOSS), [ANEMIA]);
    assert_eq!(loaded.edges(), 16);
}

#[test]
fn descriptions_are_designations_in_their_languages() {
    let loaded = snomed();
    let designations = loaded.designations(ANEMIA);
    let find = |value: &str| designations.iter().find(|d| d.value == value).copied();
    let fsn = find("Anemia (disorder)").unwrap();
    assert!(fsn.preferred);
    assert_eq!(fsn.language.as_deref(), Some("en"));
    assert_eq!(
        fsn.use_,
        Some((
            "http://snomed.info/sct".to_owned(),
            "900000000000003001".to_owned()
        ))
    );
    assert!(find("Anemia").unwrap().preferred);
    // Preferred only in the GB refset: not preferred for en-US.
    assert!(!find("Anaemia").unwrap().preferred);
    let french = find("Anémie").unwrap();
    assert_eq!(french.language.as_deref(), Some("fr"));
    let definition = find("A reduction of the oxygen-carrying capacity of the blood.").unwrap();
    assert_eq!(definition.use_.as_ref().unwrap().1, "900000000000550004");
    // Inactive descriptions are left out.
    assert!(find("Anaemia (old term)").is_none());
    assert_eq!(designations.len(), 5);
}

#[test]
fn concept_properties() {
    let loaded = snomed();
    assert_eq!(
        loaded.property(IRON_DEFICIENCY_ANEMIA, "sufficientlyDefined"),
        Some(&PropertyValue::Boolean(true))
    );
    assert_eq!(
        loaded.property(ANEMIA, "sufficientlyDefined"),
        Some(&PropertyValue::Boolean(false))
    );
    assert_eq!(
        loaded.property(ANEMIA, "moduleId"),
        Some(&PropertyValue::Code("900000000000207008".to_owned()))
    );
    assert_eq!(
        loaded.property(ANEMIA, "effectiveTime"),
        Some(&PropertyValue::DateTime("2024-07-01".to_owned()))
    );
    assert_eq!(
        loaded.property(ANEMIA, "inactive"),
        Some(&PropertyValue::Boolean(false))
    );
}

#[test]
fn attributes_other_than_is_a_are_properties_of_the_source() {
    let loaded = snomed();
    let code = |c: &str| PropertyValue::Code(c.to_owned());
    // Finding site, in two role groups.
    assert_eq!(
        loaded.properties(IRON_DEFICIENCY_ANEMIA, "363698007"),
        [&code("8000008001"), &code("8000008001")]
    );
    // Due to.
    assert_eq!(
        loaded.property(ANEMIA_DUE_TO_BLOOD_LOSS, "42752001"),
        Some(&code(BLEEDING))
    );
    // Inactive relationships are not read.
    assert!(loaded.properties(CHRONIC_ANEMIA, "363698007").is_empty());
    assert_eq!(
        loaded.header.property_uri.as_deref(),
        Some("http://snomed.info/id/")
    );
}

#[test]
fn simple_refset_snapshots_give_members_that_are_concepts() {
    let loaded = snomed();
    // Not the inactive member, the description, or the Delta file's member.
    assert_eq!(
        loaded.members(ANEMIA_REFSET),
        [ANEMIA, IRON_DEFICIENCY_ANEMIA, OLD_CONCEPT, CHRONIC_ANEMIA]
    );
    assert_eq!(loaded.members(BLEEDING_REFSET), [BLEEDING, PALE_SKIN]);
    assert_eq!(loaded.display(ANEMIA_REFSET), Some("Anaemia reference set"));
    assert!(loaded.members("900000000000509007").is_empty());
}

#[test]
fn sctid_partitions_tell_concepts_apart() {
    for (id, concept) in [
        (ANEMIA, true),
        ("138875005", true),
        ("900000000000509007", true),
        // An extension concept (partition 10).
        ("731000124108", true),
        ("9000010010", false),
        ("9500017027", false),
        ("12", false),
    ] {
        assert_eq!(rf2::is_concept_id(id.parse().unwrap()), concept, "{id}");
    }
}

/// A copy of the fixture with one file rewritten by `change`.
fn damaged(name: &str, file: &str, change: impl Fn(&str) -> String) -> TempDir {
    let dir = TempDir::new(name);
    copy_fixture(&release(), &dir.0);
    let path = dir.0.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = change(&text);
    assert_ne!(changed, text, "the change must change {file}");
    std::fs::write(&path, changed).unwrap();
    dir
}

/// Replaces field `field` of line `line` (1-based) of a tab-separated text.
fn set_field(text: &str, line: usize, field: usize, value: &str) -> String {
    let mut lines: Vec<String> = text.split("\r\n").map(str::to_owned).collect();
    let mut fields: Vec<&str> = lines[line - 1].split('\t').collect();
    fields[field] = value;
    lines[line - 1] = fields.join("\t");
    lines.join("\r\n")
}

#[test]
fn bad_values_are_reported_at_their_file_and_line() {
    let dir = damaged("rf2-time", CONCEPT_FILE, |t| {
        set_field(t, 3, 1, "2025-01-01")
    });
    let error = load_error(Format::Snomed, &dir.0, &Options::default());
    assert_eq!(error.position.file, CONCEPT_FILE);
    assert_error(&error, CONCEPT_FILE, 3, "bad effectiveTime '2025-01-01'");

    let relationships = "Snapshot/Terminology/sct2_Relationship_Snapshot_INT_20250101.txt";
    let dir = damaged("rf2-active", relationships, |t| set_field(t, 4, 2, "yes"));
    let error = load_error(Format::Snomed, &dir.0, &Options::default());
    assert_error(&error, relationships, 4, "bad active 'yes'");

    let dir = damaged("rf2-id", CONCEPT_FILE, |t| set_field(t, 5, 0, "80000A5003"));
    let error = load_error(Format::Snomed, &dir.0, &Options::default());
    assert_error(
        &error,
        CONCEPT_FILE,
        5,
        "bad identifier '80000A5003' in column id",
    );

    let descriptions = "Snapshot/Terminology/sct2_Description_Snapshot-en_INT_20250101.txt";
    let dir = damaged("rf2-fields", descriptions, |t| {
        let mut lines: Vec<&str> = t.split("\r\n").collect();
        lines[6] = "123\t20250101\t1";
        lines.join("\r\n")
    });
    let error = load_error(Format::Snomed, &dir.0, &Options::default());
    assert_error(
        &error,
        descriptions,
        7,
        "the row has 3 fields, the header 9",
    );

    let dir = damaged("rf2-column", descriptions, |t| {
        t.replacen("typeId", "type", 1)
    });
    let error = load_error(Format::Snomed, &dir.0, &Options::default());
    assert_error(&error, descriptions, 1, "missing column typeId");
}

#[test]
fn unknown_columns_and_a_bom_do_not_break_the_load() {
    let dir = damaged("rf2-extra", CONCEPT_FILE, |t| {
        let body = t
            .split("\r\n")
            .map(|line| {
                if line.is_empty() {
                    String::new()
                } else {
                    format!("{line}\textra")
                }
            })
            .collect::<Vec<_>>()
            .join("\r\n");
        format!("\u{feff}{body}")
    });
    let loaded = load(Format::Snomed, &dir.0, &Options::default());
    assert_eq!(loaded.concepts().len(), 18);
    assert_eq!(loaded.display(ANEMIA), Some("Anemia"));
}

#[test]
fn missing_files_and_unknown_editions_are_errors() {
    let dir = TempDir::new("rf2-missing");
    copy_fixture(&release(), &dir.0);
    std::fs::remove_file(
        dir.0
            .join("Snapshot/Terminology/sct2_StatedRelationship_Snapshot_INT_20250101.txt"),
    )
    .unwrap();
    let stated = with(Rf2Options {
        relationships: Relationships::Stated,
        ..Rf2Options::default()
    });
    let error = load_error(Format::Snomed, &dir.0, &stated);
    assert_eq!(error.position.line, 0);
    assert!(
        error.message.contains("sct2_StatedRelationship_Snapshot"),
        "{error}"
    );

    let terminology = dir.0.join("Snapshot/Terminology");
    std::fs::rename(
        terminology.join("sct2_Concept_Snapshot_INT_20250101.txt"),
        terminology.join("sct2_Concept_Snapshot_US1000124_20250301.txt"),
    )
    .unwrap();
    let error = load_error(Format::Snomed, &dir.0, &Options::default());
    assert!(
        error
            .message
            .contains("'US1000124' is not the International Edition"),
        "{error}"
    );
    let us = with(Rf2Options {
        module_id: Some("731000124108".to_owned()),
        ..Rf2Options::default()
    });
    let (header, _) = terminology::formats::open(Format::Snomed, &dir.0, &us).unwrap();
    assert_eq!(
        header.version.as_deref(),
        Some("http://snomed.info/sct/731000124108/version/20250301")
    );
}

/// Streams a synthetic snapshot and checks every count; returns the time
/// the parse took.
fn stream_synthetic(concepts: usize) -> Duration {
    let dir = TempDir::new("rf2-synthetic");
    let summary = synthetic::write(&dir.0, concepts).unwrap();
    let started = Instant::now();
    let (header, records) =
        terminology::formats::open(Format::Snomed, &dir.0, &Options::default()).unwrap();
    assert!(header.version.unwrap().ends_with(synthetic::DATE));
    let (mut concept_records, mut edges, mut designations, mut attributes) = (0, 0, 0, 0);
    let mut members = 0;
    let mut inactive = 0;
    let mut displays = 0;
    let probe = synthetic::concept_id(concepts / 2);
    for record in records {
        match record.unwrap() {
            Record::Concept {
                code,
                display,
                active,
                ..
            } => {
                concept_records += 1;
                inactive += usize::from(!active && display.is_none());
                if code == probe && display.as_deref() == Some(&synthetic::display(concepts / 2)) {
                    displays += 1;
                }
            }
            Record::IsA { .. } => edges += 1,
            Record::Designation { .. } => designations += 1,
            Record::Property { property, .. } => {
                attributes += usize::from(property == "363698007");
            }
            Record::Member { .. } => members += 1,
        }
    }
    let elapsed = started.elapsed();
    // One record from the concept file, one with the FSN, one with the
    // preferred synonym.
    assert_eq!(concept_records, 3 * summary.concepts);
    assert_eq!(inactive, summary.concepts - summary.active_concepts);
    assert_eq!(edges, summary.is_a);
    assert_eq!(designations, summary.descriptions);
    assert_eq!(attributes, summary.attributes);
    assert_eq!(members, 0, "the synthetic release has no simple refset");
    assert_eq!(
        displays, 1,
        "the last display of {probe} is its preferred synonym"
    );
    elapsed
}

#[test]
fn a_large_synthetic_snapshot_streams_quickly() {
    // 20,000 concepts (60,000 descriptions and refset rows, about 40,000
    // relationships) by default; RF2_SYNTHETIC_CONCEPTS=100000 with
    // `--release` measures the benchmark's size (docs/terminology-formats.md
    // has the numbers). The bound, a millisecond per concept, holds for
    // debug builds on a busy machine.
    let concepts = std::env::var("RF2_SYNTHETIC_CONCEPTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let elapsed = stream_synthetic(concepts);
    eprintln!("streamed a synthetic snapshot of {concepts} concepts in {elapsed:?}");
    assert!(
        elapsed < Duration::from_millis(concepts as u64),
        "took {elapsed:?}"
    );
}
