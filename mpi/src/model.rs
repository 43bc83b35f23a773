//! Fellegi–Sunter scoring: log2(m/u) weights per field level, the
//! term-frequency adjustment of exact name agreement, the total score, the
//! decision (link / review / separate) and the explainable `Comparison`.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::compare;
use crate::config::{Config, ConfigError};
use crate::features::Features;
use crate::fields::{Field, Gamma, MISSING, level};

/// What to do with a candidate pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Link,
    Review,
    Separate,
}

/// The match grade of Patient/$match (extension `match-grade`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MatchGrade {
    #[serde(rename = "certain")]
    Certain,
    #[serde(rename = "probable")]
    Probable,
    #[serde(rename = "possible")]
    Possible,
    #[serde(rename = "certainly-not")]
    CertainlyNot,
}

impl MatchGrade {
    /// The code of the `match-grade` extension.
    pub fn code(self) -> &'static str {
        match self {
            MatchGrade::Certain => "certain",
            MatchGrade::Probable => "probable",
            MatchGrade::Possible => "possible",
            MatchGrade::CertainlyNot => "certainly-not",
        }
    }
}

/// How often each normalised name occurs, for the term-frequency
/// adjustment: the server fills it from its records (or calls
/// `from_features`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct NameFrequencies {
    pub given: HashMap<String, u32>,
    pub family: HashMap<String, u32>,
    /// The number of records counted.
    pub total: u64,
}

impl NameFrequencies {
    /// Counts the first given word and the family name of each record.
    pub fn from_features<'a>(records: impl IntoIterator<Item = &'a Features>) -> NameFrequencies {
        let mut table = NameFrequencies::default();
        for record in records {
            table.add(record);
        }
        table
    }

    /// Counts one more record.
    pub fn add(&mut self, record: &Features) {
        self.total += 1;
        if let Some(given) = &record.given {
            *self.given.entry(given.first.clone()).or_default() += 1;
        }
        if let Some(family) = &record.family {
            *self.family.entry(family.full.clone()).or_default() += 1;
        }
    }

    fn share(counts: &HashMap<String, u32>, total: u64, name: &str) -> Option<f64> {
        let count = *counts.get(name)?;
        (total > 0 && count > 0).then(|| f64::from(count) / total as f64)
    }
}

/// One field's part of a comparison, as the review UI shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldComparison {
    /// The field ("given", …, or the identifier system).
    pub field: String,
    /// The level's name, or "missing".
    pub level: String,
    /// The weight added to the score (log2 m/u, adjusted).
    pub weight: f64,
    /// Why the weight differs from the level's plain log2(m/u), if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adjustment: Option<String>,
}

/// The explained score of one pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub score: f64,
    pub decision: Decision,
    pub grade: MatchGrade,
    pub fields: Vec<FieldComparison>,
}

/// A configuration ready to score: weights computed once.
#[derive(Debug, Clone)]
pub struct Matcher {
    cfg: Config,
    weights: Vec<Vec<f64>>,
    id_weights: Vec<[f64; 2]>,
    frequencies: NameFrequencies,
}

impl Default for Matcher {
    /// The default configuration (which validates: see the tests).
    fn default() -> Matcher {
        Matcher::build(Config::default())
    }
}

/// Fields that describe a household rather than a person: when the given
/// names clearly differ (twins, siblings, spouses), their agreement is not
/// evidence for the pair and only their disagreement counts.
const HOUSEHOLD: [Field; 3] = [Field::Phone, Field::Locality, Field::Address];

fn log2_ratio(m: f64, u: f64) -> f64 {
    (m / u).log2()
}

impl Matcher {
    /// Validates the configuration and computes its weights.
    pub fn new(cfg: Config) -> Result<Matcher, ConfigError> {
        cfg.validate()?;
        Ok(Matcher::build(cfg))
    }

    fn build(cfg: Config) -> Matcher {
        let weights = cfg
            .fields
            .iter()
            .map(|levels| levels.iter().map(|l| log2_ratio(l.m, l.u)).collect())
            .collect();
        let id_weights = cfg
            .identifiers
            .iter()
            .map(|s| {
                [
                    log2_ratio(s.agree.m, s.agree.u),
                    log2_ratio(s.disagree.m, s.disagree.u),
                ]
            })
            .collect();
        Matcher {
            cfg,
            weights,
            id_weights,
            frequencies: NameFrequencies::default(),
        }
    }

    /// Uses these name frequencies for the term-frequency adjustment.
    pub fn with_frequencies(mut self, frequencies: NameFrequencies) -> Matcher {
        self.frequencies = frequencies;
        self
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The features of a Patient under this configuration.
    pub fn features(&self, patient: &Value, source: &str) -> Features {
        Features::from_patient(patient, source, &self.cfg)
    }

    /// The agreement levels of a pair.
    pub fn gamma(&self, a: &Features, b: &Features) -> Gamma {
        compare::compare(a, b, &self.cfg)
    }

    /// The score of a pair, without explanation (the fast path).
    pub fn score(&self, a: &Features, b: &Features) -> f64 {
        let gamma = self.gamma(a, b);
        self.score_gamma(&gamma, a, None)
    }

    /// The score of known levels; `explain` collects each field's part.
    fn score_gamma(
        &self,
        gamma: &Gamma,
        a: &Features,
        mut explain: Option<&mut Vec<FieldComparison>>,
    ) -> f64 {
        let given_differs = matches!(
            gamma.level(Field::Given),
            level::GIVEN_DISAGREE | level::GIVEN_INITIAL
        ) || (gamma.level(Field::NameOrder) == level::SWAPPED
            && gamma.level(Field::Family) == level::FAMILY_DISAGREE);
        let mut total = 0.0;
        for field in Field::ALL {
            let lvl = gamma.level(field);
            let (mut weight, mut adjustment) = match lvl {
                MISSING => (0.0, None),
                _ => (self.weights[field.index()][usize::from(lvl)], None),
            };
            if lvl == level::EXACT && matches!(field, Field::Given | Field::Family) {
                if let Some(tf) = self.tf_adjustment(field, gamma, a) {
                    weight += tf;
                    adjustment = Some(format!("term frequency {tf:+.2}"));
                }
            }
            if given_differs && HOUSEHOLD.contains(&field) && weight > 0.0 {
                weight = 0.0;
                adjustment = Some("given names differ: household agreement not counted".into());
            }
            total += weight;
            if let Some(fields) = explain.as_deref_mut() {
                fields.push(FieldComparison {
                    field: field.name().into(),
                    level: level_name(field.levels(), lvl),
                    weight,
                    adjustment,
                });
            }
        }
        for (i, w) in self.id_weights.iter().enumerate() {
            let lvl = gamma.ids[i];
            let weight = if lvl == MISSING {
                0.0
            } else {
                w[usize::from(lvl)]
            };
            total += weight;
            if let Some(fields) = explain.as_deref_mut() {
                let name = self.cfg.identifiers[i].system.clone();
                fields.push(FieldComparison {
                    field: name,
                    level: level_name(crate::fields::IDENTIFIER_LEVELS, lvl),
                    weight,
                    adjustment: None,
                });
            }
        }
        total
    }

    /// log2(u_exact / u_name) for an exact name agreement, clamped.
    /// The name is a's (equal to b's, the level being exact).
    fn tf_adjustment(&self, field: Field, gamma: &Gamma, a: &Features) -> Option<f64> {
        if !self.cfg.term_frequency.enabled || self.frequencies.total == 0 {
            return None;
        }
        // Under a swap, a's given name may be a family name and the other
        // way round: the name's share is its larger share in either table.
        let freq = &self.frequencies;
        let swapped = gamma.level(Field::NameOrder) == level::SWAPPED;
        let name = match field {
            Field::Given => &a.given.as_ref()?.first,
            _ => &a.family.as_ref()?.full,
        };
        let given = NameFrequencies::share(&freq.given, freq.total, name);
        let family = NameFrequencies::share(&freq.family, freq.total, name);
        let share = match (field, swapped) {
            (_, true) => given.into_iter().chain(family).reduce(f64::max),
            (Field::Given, false) => given,
            _ => family,
        }?;
        let u_exact = self.cfg.fields[field.index()][usize::from(level::EXACT)].u;
        let limit = self.cfg.term_frequency.max_adjustment;
        Some((u_exact / share).log2().clamp(-limit, limit))
    }

    /// Each field's weight for levels `gamma` of (a, b): fixed fields in
    /// `Field::ALL` order, then configured identifier systems.
    pub fn contributions(
        &self,
        gamma: &Gamma,
        a: &Features,
    ) -> ([f64; Field::COUNT], [f64; crate::fields::MAX_ID_SYSTEMS]) {
        let mut fields = Vec::with_capacity(Field::COUNT + self.id_weights.len());
        self.score_gamma(gamma, a, Some(&mut fields));
        let mut fixed = [0.0; Field::COUNT];
        let mut ids = [0.0; crate::fields::MAX_ID_SYSTEMS];
        for (i, f) in fields.iter().enumerate() {
            if i < Field::COUNT {
                fixed[i] = f.weight;
            } else if i - Field::COUNT < ids.len() {
                ids[i - Field::COUNT] = f.weight;
            }
        }
        (fixed, ids)
    }

    /// The score of levels computed earlier for (a, b), e.g. by training.
    pub fn score_levels(&self, gamma: &Gamma, a: &Features) -> f64 {
        self.score_gamma(gamma, a, None)
    }

    /// The score with each field's level and weight.
    pub fn compare(&self, a: &Features, b: &Features) -> Comparison {
        let gamma = self.gamma(a, b);
        let mut fields = Vec::with_capacity(Field::COUNT + self.id_weights.len());
        let score = self.score_gamma(&gamma, a, Some(&mut fields));
        Comparison {
            score,
            decision: self.decide(score),
            grade: self.grade(score),
            fields,
        }
    }

    /// Link, review or separate by the thresholds.
    pub fn decide(&self, score: f64) -> Decision {
        let t = &self.cfg.thresholds;
        if score >= t.auto_link {
            Decision::Link
        } else if score >= t.review {
            Decision::Review
        } else {
            Decision::Separate
        }
    }

    /// The $match grade of a score.
    pub fn grade(&self, score: f64) -> MatchGrade {
        let t = &self.cfg.thresholds;
        if score >= t.certain {
            MatchGrade::Certain
        } else if score >= t.auto_link {
            MatchGrade::Probable
        } else if score >= t.review {
            MatchGrade::Possible
        } else {
            MatchGrade::CertainlyNot
        }
    }
}

fn level_name(levels: &[&str], lvl: u8) -> String {
    levels
        .get(usize::from(lvl))
        .copied()
        .unwrap_or("missing")
        .to_string()
}
