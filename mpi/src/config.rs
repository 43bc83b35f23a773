//! The matching configuration file (TOML): thresholds, m- and
//! u-probabilities per field level, identifier systems, normalisation
//! settings and source priority. Parsing validates everything and reports
//! each problem with the path of the offending field.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::fields::{Field, MAX_ID_SYSTEMS};

/// The probabilities of one level: among true matches (`m`) and among
/// non-matches (`u`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MU {
    pub m: f64,
    pub u: f64,
}

/// Score thresholds (sums of log2 weights).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// At or above: match grade `certain`.
    pub certain: f64,
    /// At or above: linked automatically (grade `probable` below `certain`).
    pub auto_link: f64,
    /// At or above (and below `auto_link`): sent to the review queue.
    pub review: f64,
}

/// How raw values are normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NormalizeSettings {
    /// The country calling code removed from phone numbers ("254").
    pub default_country_code: String,
    /// How many trailing digits of a phone number are compared.
    pub phone_digits: usize,
}

impl Default for NormalizeSettings {
    fn default() -> Self {
        NormalizeSettings {
            default_country_code: "254".into(),
            phone_digits: 9,
        }
    }
}

/// Term-frequency adjustment of exact name agreement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TermFrequency {
    pub enabled: bool,
    /// The largest change (either way) to an exact name agreement's weight.
    pub max_adjustment: f64,
}

impl Default for TermFrequency {
    fn default() -> Self {
        TermFrequency {
            enabled: true,
            max_adjustment: 4.0,
        }
    }
}

/// An identifier system compared on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentifierSystem {
    pub system: String,
    /// The national id: golden records prefer it, and the review UI shows it.
    #[serde(default)]
    pub national: bool,
    /// Values are uppercased before comparison.
    #[serde(default = "yes")]
    pub uppercase: bool,
    pub agree: MU,
    pub disagree: MU,
}

fn yes() -> bool {
    true
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub thresholds: Thresholds,
    pub normalize: NormalizeSettings,
    pub term_frequency: TermFrequency,
    /// Sources in decreasing priority, for survivorship.
    pub source_priority: Vec<String>,
    /// Per `Field` (in `Field::ALL` order), per level: m and u.
    pub fields: Vec<Vec<MU>>,
    pub identifiers: Vec<IdentifierSystem>,
}

/// The file as written: fields are tables of levels.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    thresholds: Thresholds,
    #[serde(default)]
    normalize: NormalizeSettings,
    #[serde(default)]
    term_frequency: TermFrequency,
    #[serde(default)]
    source_priority: Vec<String>,
    #[serde(default)]
    fields: BTreeMap<String, BTreeMap<String, MU>>,
    #[serde(default)]
    identifiers: Vec<IdentifierSystem>,
}

/// One problem in a configuration: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub path: String,
    pub problem: String,
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid MPI configuration:")?;
        for p in &self.problems {
            write!(f, "\n  {}: {}", p.path, p.problem)?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, problem: impl Into<String>) {
        self.0.push(ConfigProblem {
            path: path.into(),
            problem: problem.into(),
        });
    }

    fn probability(&mut self, path: &str, value: f64) {
        if !(value > 0.0 && value <= 1.0) {
            self.add(
                path,
                format!("must be a probability in (0, 1], got {value}"),
            );
        }
    }

    fn mu(&mut self, path: &str, mu: MU) {
        self.probability(&format!("{path}.m"), mu.m);
        self.probability(&format!("{path}.u"), mu.u);
    }
}

impl Config {
    /// Parses and validates a TOML configuration. Fields left out take
    /// their default probabilities; a field that is given must list all
    /// its levels.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError {
            problems: vec![ConfigProblem {
                path: e.span().map_or_else(
                    || "(file)".into(),
                    |span| {
                        format!(
                            "line {}",
                            text[..span.start.min(text.len())].matches('\n').count() + 1
                        )
                    },
                ),
                problem: e.message().to_string(),
            }],
        })?;
        Config::from_file(file)
    }

    /// The configuration as a TOML file (what `baraza mpi train` writes).
    pub fn to_toml_string(&self) -> String {
        let mut fields = BTreeMap::new();
        for field in Field::ALL {
            let levels = field
                .levels()
                .iter()
                .zip(&self.fields[field.index()])
                .map(|(name, mu)| (name.to_string(), *mu))
                .collect();
            fields.insert(field.name().to_string(), levels);
        }
        let file = ConfigFile {
            thresholds: self.thresholds,
            normalize: self.normalize.clone(),
            term_frequency: self.term_frequency,
            source_priority: self.source_priority.clone(),
            fields,
            identifiers: self.identifiers.clone(),
        };
        // Serialising plain numbers, strings and tables cannot fail.
        toml::to_string_pretty(&file).unwrap_or_default()
    }

    /// Validates a configuration built in code (e.g. by training).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Problems::default();
        validate_into(self, &mut problems);
        if problems.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: problems.0,
            })
        }
    }

    fn from_file(file: ConfigFile) -> Result<Config, ConfigError> {
        let mut problems = Problems::default();
        let mut fields = crate::defaults::field_probabilities();
        for (name, levels) in &file.fields {
            let Some(field) = Field::parse(name) else {
                let known: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
                problems.add(
                    format!("fields.{name}"),
                    format!("unknown field; known fields: {}", known.join(", ")),
                );
                continue;
            };
            for level in levels.keys() {
                if !field.levels().contains(&level.as_str()) {
                    problems.add(
                        format!("fields.{name}.{level}"),
                        format!(
                            "unknown level; the levels of {name} are: {}",
                            field.levels().join(", ")
                        ),
                    );
                }
            }
            let mut parsed = Vec::new();
            for level in field.levels() {
                match levels.get(*level) {
                    Some(mu) => parsed.push(*mu),
                    None => problems.add(format!("fields.{name}.{level}"), "missing level"),
                }
            }
            if parsed.len() == field.levels().len() {
                fields[field.index()] = parsed;
            } else {
                // Incomplete: the levels given are checked here, not below.
                for (level, mu) in levels {
                    problems.mu(&format!("fields.{name}.{level}"), *mu);
                }
            }
        }
        let config = Config {
            thresholds: file.thresholds,
            normalize: file.normalize,
            term_frequency: file.term_frequency,
            source_priority: file.source_priority,
            fields,
            identifiers: file.identifiers,
        };
        validate_into(&config, &mut problems);
        if problems.0.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                problems: problems.0,
            })
        }
    }

    /// The index of a configured identifier system.
    pub fn identifier_index(&self, system: &str) -> Option<usize> {
        self.identifiers.iter().position(|s| s.system == system)
    }
}

fn validate_into(config: &Config, problems: &mut Problems) {
    let t = config.thresholds;
    for (name, value) in [
        ("certain", t.certain),
        ("auto_link", t.auto_link),
        ("review", t.review),
    ] {
        if !value.is_finite() {
            problems.add(format!("thresholds.{name}"), "must be a finite number");
        }
    }
    if t.review >= t.auto_link {
        problems.add(
            "thresholds.review",
            format!("must be below thresholds.auto_link ({})", t.auto_link),
        );
    }
    if t.auto_link > t.certain {
        problems.add(
            "thresholds.auto_link",
            format!("must not exceed thresholds.certain ({})", t.certain),
        );
    }
    let code = &config.normalize.default_country_code;
    if code.len() > 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        problems.add(
            "normalize.default_country_code",
            format!("must be 0 to 3 digits, got {code:?}"),
        );
    }
    if !(6..=15).contains(&config.normalize.phone_digits) {
        problems.add("normalize.phone_digits", "must be between 6 and 15");
    }
    let max_adjustment = config.term_frequency.max_adjustment;
    if max_adjustment.is_nan() || max_adjustment < 0.0 {
        problems.add("term_frequency.max_adjustment", "must be zero or more");
    }
    for (i, source) in config.source_priority.iter().enumerate() {
        if config.source_priority[..i].contains(source) {
            problems.add(
                format!("source_priority[{i}]"),
                format!("{source:?} is listed twice"),
            );
        }
    }
    for field in Field::ALL {
        let levels = &config.fields[field.index()];
        let path = format!("fields.{}", field.name());
        for (name, mu) in field.levels().iter().zip(levels) {
            problems.mu(&format!("{path}.{name}"), *mu);
        }
        let m: f64 = levels.iter().map(|l| l.m).sum();
        let u: f64 = levels.iter().map(|l| l.u).sum();
        for (which, sum) in [("m", m), ("u", u)] {
            if (sum - 1.0).abs() > 0.02 {
                problems.add(&path, format!("the {which}-probabilities of the levels sum to {sum:.4}; they must sum to 1"));
            }
        }
    }
    if config.identifiers.len() > MAX_ID_SYSTEMS {
        problems.add(
            "identifiers",
            format!(
                "at most {MAX_ID_SYSTEMS} systems, got {}",
                config.identifiers.len()
            ),
        );
    }
    for (i, system) in config.identifiers.iter().enumerate() {
        let path = format!("identifiers[{i}]");
        if system.system.trim().is_empty() {
            problems.add(format!("{path}.system"), "must not be empty");
        }
        if config.identifiers[..i]
            .iter()
            .any(|s| s.system == system.system)
        {
            problems.add(
                format!("{path}.system"),
                format!("{:?} is configured twice", system.system),
            );
        }
        problems.mu(&format!("{path}.agree"), system.agree);
        problems.mu(&format!("{path}.disagree"), system.disagree);
        for (which, sum) in [
            ("m", system.agree.m + system.disagree.m),
            ("u", system.agree.u + system.disagree.u),
        ] {
            if (sum - 1.0).abs() > 0.02 {
                problems.add(
                    &path,
                    format!("agree.{which} + disagree.{which} = {sum:.4}; they must sum to 1"),
                );
            }
        }
    }
}
