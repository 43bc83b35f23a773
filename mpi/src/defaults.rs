//! The default configuration: probabilities measured on the generator's
//! standard setting (true m and u of blocked candidate pairs, rounded), and
//! thresholds chosen from the evaluation's threshold sweep
//! (docs/mpi-matching.md).

use crate::config::{Config, IdentifierSystem, MU, NormalizeSettings, TermFrequency, Thresholds};
use crate::fields::Field;

/// The national id system of the generator and of the default
/// configuration.
pub const NATIONAL_ID_SYSTEM: &str = "http://baraza.health/sid/national-id";

fn mu(m: f64, u: f64) -> MU {
    MU { m, u }
}

/// Default m and u per field level, in `Field::ALL` and level order.
pub fn field_probabilities() -> Vec<Vec<MU>> {
    Field::ALL
        .iter()
        .map(|field| match field {
            Field::Given => vec![
                mu(0.60, 0.003),
                mu(0.04, 0.0007),
                mu(0.20, 0.0005),
                mu(0.06, 0.003),
                mu(0.06, 0.0007),
                mu(0.005, 0.002),
                mu(0.035, 0.9901),
            ],
            Field::Family => vec![
                mu(0.70, 0.0045),
                mu(0.16, 0.0005),
                mu(0.05, 0.002),
                mu(0.06, 0.0004),
                mu(0.03, 0.9926),
            ],
            // Whether names were swapped says little once both parts have
            // agreed crosswise: a small penalty only.
            Field::NameOrder => vec![mu(0.95, 0.90), mu(0.05, 0.10)],
            Field::BirthDate => vec![
                mu(0.68, 0.00006),
                mu(0.044, 0.00001),
                mu(0.18, 0.001),
                mu(0.08, 0.0006),
                mu(0.004, 0.0006),
                mu(0.012, 0.99773),
            ],
            Field::Sex => vec![mu(0.98, 0.5), mu(0.02, 0.5)],
            Field::Phone => vec![mu(0.82, 0.0001), mu(0.18, 0.9999)],
            Field::Locality => vec![mu(0.81, 0.034), mu(0.005, 0.025), mu(0.185, 0.941)],
            Field::Address => vec![mu(0.80, 0.0002), mu(0.01, 0.036), mu(0.19, 0.9638)],
            Field::OtherIdentifier => vec![mu(0.55, 0.00002), mu(0.45, 0.99998)],
        })
        .collect()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            thresholds: Thresholds {
                certain: 40.0,
                auto_link: 20.0,
                review: 8.0,
            },
            normalize: NormalizeSettings::default(),
            term_frequency: TermFrequency::default(),
            source_priority: Vec::new(),
            fields: field_probabilities(),
            identifiers: vec![IdentifierSystem {
                system: NATIONAL_ID_SYSTEM.into(),
                national: true,
                uppercase: true,
                agree: mu(0.995, 0.000005),
                disagree: mu(0.005, 0.999995),
            }],
        }
    }
}
