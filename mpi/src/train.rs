//! Expectation–maximisation of the m- and u-probabilities from unlabelled
//! candidate pairs (those blocking produces), u initialised from random
//! pairs. `baraza mpi train` calls `train_on_features` and writes the
//! returned configuration.

use std::collections::HashMap;

use crate::blocking;
use crate::config::{Config, ConfigError, MU};
use crate::features::Features;
use crate::fields::{Field, Gamma, MISSING};
use crate::generator::Rng;
use crate::model::Matcher;

/// How training runs.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    pub max_iterations: usize,
    /// Stop when no probability moves by more than this.
    pub tolerance: f64,
    /// Keep u as measured on random pairs; estimate only m.
    pub fix_u: bool,
    /// The starting share of matches among candidate pairs.
    pub initial_match_share: f64,
    /// At most this many candidate pairs and random pairs are used.
    pub max_pairs: usize,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            max_iterations: 200,
            tolerance: 1e-6,
            fix_u: false,
            initial_match_share: 0.2,
            max_pairs: 500_000,
            seed: 1,
        }
    }
}

/// What training produced.
#[derive(Debug, Clone)]
pub struct TrainResult {
    pub config: Config,
    pub iterations: usize,
    pub converged: bool,
    /// The estimated share of matches among the candidate pairs.
    pub match_share: f64,
}

/// Smallest probability written (keeps every weight finite).
const FLOOR: f64 = 1e-6;

/// One compared dimension: a fixed field or an identifier system.
struct Dimension {
    m: Vec<f64>,
    u: Vec<f64>,
}

fn level_of(gamma: &Gamma, d: usize) -> u8 {
    if d < Field::COUNT {
        gamma.fixed[d]
    } else {
        gamma.ids[d - Field::COUNT]
    }
}

fn dimensions(cfg: &Config) -> Vec<Dimension> {
    let mut dims: Vec<Dimension> = cfg
        .fields
        .iter()
        .map(|levels| Dimension {
            m: levels.iter().map(|l| l.m).collect(),
            u: levels.iter().map(|l| l.u).collect(),
        })
        .collect();
    for s in &cfg.identifiers {
        dims.push(Dimension {
            m: vec![s.agree.m, s.disagree.m],
            u: vec![s.agree.u, s.disagree.u],
        });
    }
    dims
}

/// Level frequencies (smoothed) of `pairs` per dimension.
fn frequencies(dims: &[Dimension], pairs: &[(Gamma, f64)]) -> Vec<Vec<f64>> {
    dims.iter()
        .enumerate()
        .map(|(d, dim)| {
            let mut counts = vec![0.5; dim.u.len()];
            for (gamma, weight) in pairs {
                let level = level_of(gamma, d);
                if level != MISSING {
                    counts[usize::from(level)] += weight;
                }
            }
            normalise(counts)
        })
        .collect()
}

fn normalise(mut values: Vec<f64>) -> Vec<f64> {
    let total: f64 = values.iter().sum();
    for v in &mut values {
        *v = (*v / total).max(FLOOR);
    }
    let total: f64 = values.iter().sum();
    values.iter().map(|v| v / total).collect()
}

/// Estimates m and u by EM from the levels of candidate pairs; u starts
/// from the levels of random pairs.
pub fn train(
    cfg: &Config,
    candidates: &[Gamma],
    random: &[Gamma],
    opts: &TrainOptions,
) -> Result<TrainResult, ConfigError> {
    let mut dims = dimensions(cfg);
    let random: Vec<(Gamma, f64)> = random.iter().map(|g| (*g, 1.0)).collect();
    if !random.is_empty() {
        for (dim, u) in dims.iter_mut().zip(frequencies(&dimensions(cfg), &random)) {
            dim.u = u;
        }
    }
    // Identical patterns are counted once.
    let mut patterns: HashMap<Gamma, f64> = HashMap::new();
    for gamma in candidates {
        *patterns.entry(*gamma).or_default() += 1.0;
    }
    let patterns: Vec<(Gamma, f64)> = patterns.into_iter().collect();
    let total: f64 = patterns.iter().map(|(_, n)| n).sum();
    let mut share = opts.initial_match_share.clamp(0.001, 0.999);
    let (mut iterations, mut converged) = (0, false);
    while iterations < opts.max_iterations && total > 0.0 {
        iterations += 1;
        let mut matched: Vec<(Gamma, f64)> = Vec::with_capacity(patterns.len());
        let mut unmatched: Vec<(Gamma, f64)> = Vec::with_capacity(patterns.len());
        let mut expected_matches = 0.0;
        for (gamma, count) in &patterns {
            let (mut log_m, mut log_u) = (share.ln(), (1.0 - share).ln());
            for (d, dim) in dims.iter().enumerate() {
                let level = level_of(gamma, d);
                if level != MISSING {
                    log_m += dim.m[usize::from(level)].ln();
                    log_u += dim.u[usize::from(level)].ln();
                }
            }
            let p = 1.0 / (1.0 + (log_u - log_m).exp());
            expected_matches += p * count;
            matched.push((*gamma, p * count));
            unmatched.push((*gamma, (1.0 - p) * count));
        }
        let new_m = frequencies(&dims, &matched);
        let new_u = if opts.fix_u {
            dims.iter().map(|d| d.u.clone()).collect()
        } else {
            frequencies(&dims, &unmatched)
        };
        let new_share = (expected_matches / total).clamp(FLOOR, 1.0 - FLOOR);
        let mut change = (new_share - share).abs();
        for (dim, (m, u)) in dims.iter_mut().zip(new_m.into_iter().zip(new_u)) {
            for (old, new) in dim.m.iter().zip(&m).chain(dim.u.iter().zip(&u)) {
                change = change.max((old - new).abs());
            }
            dim.m = m;
            dim.u = u;
        }
        share = new_share;
        if change < opts.tolerance {
            converged = true;
            break;
        }
    }
    let mut config = cfg.clone();
    for (field, dim) in config.fields.iter_mut().zip(&dims) {
        *field = dim
            .m
            .iter()
            .zip(&dim.u)
            .map(|(m, u)| MU { m: *m, u: *u })
            .collect();
    }
    for (system, dim) in config.identifiers.iter_mut().zip(&dims[Field::COUNT..]) {
        system.agree = MU {
            m: dim.m[0],
            u: dim.u[0],
        };
        system.disagree = MU {
            m: dim.m[1],
            u: dim.u[1],
        };
    }
    config.validate()?;
    Ok(TrainResult {
        config,
        iterations,
        converged,
        match_share: share,
    })
}

/// Trains on a sample of records: blocks them, compares up to
/// `opts.max_pairs` candidate pairs and as many random pairs, and runs EM.
pub fn train_on_features(
    cfg: &Config,
    records: &[Features],
    opts: &TrainOptions,
) -> Result<TrainResult, ConfigError> {
    let matcher = Matcher::new(cfg.clone())?;
    let keys: Vec<_> = records.iter().map(blocking::blocking_keys).collect();
    let mut rng = Rng::new(opts.seed);
    let mut candidates = blocking::candidate_pairs(&keys, crate::evaluate::MAX_BLOCK);
    if candidates.len() > opts.max_pairs {
        // A partial Fisher–Yates shuffle keeps a uniform sample.
        for i in 0..opts.max_pairs {
            let j = i + rng.below(candidates.len() - i);
            candidates.swap(i, j);
        }
        candidates.truncate(opts.max_pairs);
    }
    let gamma = |i: usize, j: usize| matcher.gamma(&records[i], &records[j]);
    let candidate_levels: Vec<Gamma> = candidates
        .iter()
        .map(|&(i, j)| gamma(i as usize, j as usize))
        .collect();
    let n = records.len();
    let random_levels: Vec<Gamma> = if n < 2 {
        Vec::new()
    } else {
        (0..opts.max_pairs.min(n * 20))
            .filter_map(|_| {
                let (i, j) = (rng.below(n), rng.below(n));
                (i != j).then(|| gamma(i, j))
            })
            .collect()
    };
    train(cfg, &candidate_levels, &random_levels, opts)
}
