//! Tests of configuration, scoring, blocking, survivorship, evaluation and
//! training.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mpi::config::Config;
use mpi::evaluate::{self, Quality};
use mpi::fields::Field;
use mpi::generator::{self, Setting};
use mpi::golden::{self, SourceRecord};
use mpi::train::{self, TrainOptions};
use mpi::{Decision, Features, MatchGrade, Matcher, NameFrequencies, blocking_keys};
use serde_json::json;

fn problems(text: &str) -> Vec<String> {
    match Config::from_toml_str(text) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.path, p.problem))
            .collect(),
    }
}

#[test]
fn default_config_validates_and_round_trips_through_toml() {
    let cfg = Config::default();
    cfg.validate().unwrap();
    let text = cfg.to_toml_string();
    let parsed = Config::from_toml_str(&text).unwrap();
    assert_eq!(parsed, cfg);
}

#[test]
fn config_errors_name_the_field_path() {
    let base = "[thresholds]\ncertain = 40.0\nauto_link = 20.0\nreview = 8.0\n";
    assert!(problems(base).is_empty());
    let check = |extra: &str, expected: &str| {
        let found = problems(&format!("{base}{extra}"));
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{expected:?} not in {found:?}"
        );
    };
    check(
        "[fields.given]\nexact = { m = 1.5, u = 0.1 }\n",
        "fields.given.exact.m: must be a probability",
    );
    check(
        "[fields.given]\nexact = { m = 0.5, u = 0.1 }\n",
        "fields.given.nickname: missing level",
    );
    check(
        "[fields.sex]\nagree = { m = 0.9, u = 0.5 }\ndisagree = { m = 0.1, u = 0.5 }\nmaybe = { m = 0.1, u = 0.1 }\n",
        "fields.sex.maybe: unknown level",
    );
    check(
        "[fields.sex]\nagree = { m = 0.5, u = 0.5 }\ndisagree = { m = 0.1, u = 0.5 }\n",
        "fields.sex: the m-probabilities of the levels sum to 0.6000",
    );
    check("[fields.shoe_size]\n", "fields.shoe_size: unknown field");
    check(
        "[normalize]\ndefault_country_code = \"+254\"\n",
        "normalize.default_country_code: must be 0 to 3 digits",
    );
    check(
        "[[identifiers]]\nsystem = \"\"\nagree = { m = 0.9, u = 0.1 }\ndisagree = { m = 0.1, u = 0.9 }\n",
        "identifiers[0].system: must not be empty",
    );
    let swapped = "[thresholds]\ncertain = 40.0\nauto_link = 8.0\nreview = 20.0\n";
    assert!(
        problems(swapped)
            .iter()
            .any(|p| p.starts_with("thresholds.review: must be below"))
    );
    assert!(
        problems("[thresholds]\ncertain = 1\n")
            .iter()
            .any(|p| p.contains("missing field"))
    );
    assert!(
        problems(&format!("{base}colour = 1\n"))
            .iter()
            .any(|p| p.contains("unknown field"))
    );
}

#[test]
fn comparison_explains_each_field_and_serialises() {
    let m = Matcher::default();
    let p = json!({"resourceType": "Patient", "name": [{"given": ["Grace"], "family": "Wanjiku"}], "birthDate": "1990-04-12", "gender": "female"});
    let (a, b) = (m.features(&p, "a"), m.features(&p, "b"));
    let c = m.compare(&a, &b);
    assert_eq!(c.fields.len(), Field::COUNT + 1);
    let total: f64 = c.fields.iter().map(|f| f.weight).sum();
    assert!((total - c.score).abs() < 1e-9);
    assert_eq!(c.fields[0].level, "exact");
    assert!((c.score - m.score(&a, &b)).abs() < 1e-9);
    let text = serde_json::to_value(&c).unwrap();
    assert_eq!(text["fields"][3]["field"], "birth_date");
    assert_eq!(m.grade(100.0), MatchGrade::Certain);
    assert_eq!(
        serde_json::to_value(m.grade(-100.0)).unwrap(),
        "certainly-not"
    );
    assert_eq!(m.decide(m.config().thresholds.review), Decision::Review);
}

#[test]
fn common_names_weigh_less_than_rare_ones() {
    let cfg = Config::default();
    let rec = |given: &str| {
        Features::from_patient(
            &json!({"resourceType": "Patient", "name": [{"given": [given], "family": "Kamau"}]}),
            "s",
            &cfg,
        )
    };
    let mut records: Vec<Features> = (0..200).map(|_| rec("Mary")).collect();
    records.push(rec("Zawadi"));
    let m = Matcher::default().with_frequencies(NameFrequencies::from_features(&records));
    assert!(m.score(&rec("Zawadi"), &rec("Zawadi")) > m.score(&rec("Mary"), &rec("Mary")) + 3.0);
}

#[test]
fn blocking_keys_survive_swaps_nicknames_and_transposed_dates() {
    let m = Matcher::default();
    let rec = |given: &str, family: &str, date: &str| {
        m.features(&json!({"resourceType": "Patient", "name": [{"given": [given], "family": family}], "birthDate": date}), "s")
    };
    let base = blocking_keys(&rec("William", "Otieno", "1980-03-07"));
    for other in [
        rec("Otieno", "William", "1980-03-07"),
        rec("Bill", "Otieno", "1980-03-07"),
        rec("William", "Otieno", "1980-07-03"),
    ] {
        let keys = blocking_keys(&other);
        assert!(keys.iter().any(|k| base.contains(k)), "{keys:?}");
    }
    assert!(base.iter().all(|k| k.kind().len() == 2));
}

#[test]
fn golden_record_follows_survivorship_rules() {
    let a = json!({"resourceType": "Patient", "id": "a", "meta": {"lastUpdated": "2024-01-01T00:00:00Z"},
        "identifier": [{"system": "urn:x", "value": "1"}], "name": [{"family": "Otieno", "given": ["Peter"]}], "birthDate": "1980"});
    let b = json!({"resourceType": "Patient", "id": "b", "meta": {"lastUpdated": "2023-01-01T00:00:00Z"},
        "identifier": [{"system": "urn:x", "value": "1"}, {"system": "urn:y", "value": "2"}], "name": [{"family": "Otieno", "given": ["Peter", "Ouma"]}],
        "birthDate": "1980-03-07", "gender": "male"});
    let c = json!({"resourceType": "Patient", "id": "c", "meta": {"lastUpdated": "2023-01-01T00:00:00Z"},
        "birthDate": "1980-03-07", "telecom": [{"system": "phone", "value": "0712"}, {"system": "email", "value": "p@x"}]});
    let sources = [
        SourceRecord {
            source: "clinic",
            patient: &a,
        },
        SourceRecord {
            source: "hospital",
            patient: &b,
        },
        SourceRecord {
            source: "lab",
            patient: &c,
        },
    ];
    let golden = golden::build_golden("g1", &sources, &["hospital".to_string()]);
    let p = &golden.patient;
    assert_eq!(p["meta"]["tag"][0]["code"], "golden");
    assert_eq!(p["identifier"].as_array().unwrap().len(), 2);
    assert_eq!(p["name"][0]["given"][1], "Ouma");
    assert_eq!(p["birthDate"], "1980-03-07");
    let rule = |element: &str| {
        golden
            .provenance
            .iter()
            .find(|x| x.element == element)
            .map(|x| (x.source.clone(), x.rule.clone()))
            .unwrap()
    };
    assert_eq!(rule("name"), ("hospital".into(), "source priority".into()));
    assert_eq!(rule("gender"), ("hospital".into(), "only source".into()));
    assert_eq!(rule("telecom"), ("lab".into(), "only source".into()));
    // Without priorities, the most recent record wins, then the most complete.
    let golden = golden::build_golden("g1", &sources, &[]);
    assert_eq!(golden.patient["birthDate"], "1980");
    assert_eq!(golden.patient["link"].as_array().unwrap().len(), 3);
}

#[test]
fn generator_is_deterministic_and_records_truth() {
    let setting = Setting {
        people: 300,
        ..Setting::small()
    };
    let (x, y) = (generator::generate(&setting), generator::generate(&setting));
    assert_eq!(x.records.len(), y.records.len());
    assert_eq!(x.records[17].patient, y.records[17].patient);
    assert!(x.records.len() > 300 && x.true_pair_count() > 50);
}

#[test]
fn matching_meets_quality_targets_on_small_setting() {
    let report = evaluate::report(&Setting::small());
    assert!(report.blocking_recall >= 0.995, "{report}");
    assert!(report.auto_links.precision() >= 0.998, "{report}");
    assert!(report.clusters.precision() >= 0.998, "{report}");
    assert!(report.clusters.f1() >= 0.99, "{report}");
    assert!(report.mean_candidates < 5.0, "{report}");
    // Removing the birth-date comparator must cost recall: the model uses it.
    let without_date = report
        .comparator_ablation
        .iter()
        .find(|(f, _)| f == "birth_date")
        .unwrap()
        .1;
    assert!(without_date.recall() < report.auto_links.recall());
}

fn f1_of(cfg: &Config, setting: &Setting) -> Quality {
    evaluate::report_with(setting, cfg).unwrap().auto_links
}

#[test]
fn em_recovers_probabilities_and_improves_a_poor_start() {
    let setting = Setting {
        people: 1_500,
        ..Setting::small()
    };
    let data = evaluate::prepare(&setting, &Config::default());
    // A poor start: every level of every field about equally likely.
    let mut poor = Config::default();
    for levels in &mut poor.fields {
        let n = levels.len() as f64;
        for (i, l) in levels.iter_mut().enumerate() {
            l.m = if i == 0 {
                2.0 / (n + 1.0)
            } else {
                1.0 / (n + 1.0)
            };
            l.u = 1.0 / n;
        }
    }
    poor.identifiers[0].agree = mpi::config::MU { m: 0.6, u: 0.4 };
    poor.identifiers[0].disagree = mpi::config::MU { m: 0.4, u: 0.6 };
    let trained = train::train_on_features(
        &poor,
        &data.features,
        &TrainOptions {
            fix_u: true,
            ..TrainOptions::default()
        },
    )
    .unwrap();
    assert!(trained.converged && trained.iterations > 1);
    // The true m of each level, from the generator's labels.
    let matcher = Matcher::default();
    let truth = evaluate::true_pairs(&data.clusters);
    for field in [Field::Given, Field::Family, Field::BirthDate, Field::Phone] {
        let mut counts = vec![0.0; field.levels().len()];
        for (i, j) in &truth {
            let level = matcher
                .gamma(&data.features[*i as usize], &data.features[*j as usize])
                .level(field);
            if level != mpi::fields::MISSING {
                counts[usize::from(level)] += 1.0;
            }
        }
        let total: f64 = counts.iter().sum();
        let estimated = trained.config.fields[field.index()][0].m;
        let true_m = counts[0] / total;
        assert!(
            (estimated - true_m).abs() < 0.08,
            "{field:?}: m(exact) {estimated:.3} vs true {true_m:.3}"
        );
    }
    let before = f1_of(&poor, &setting);
    let after = f1_of(&trained.config, &setting);
    assert!(
        after.f1() > before.f1() + 0.05,
        "before {before}, after {after}"
    );
    assert!(after.f1() > 0.95, "after {after}");
}
