//! Quality measurement on generated data: blocking recall and candidate
//! counts, precision/recall/F1 of auto-links (pairwise and after linking
//! into clusters), the review queue, a threshold sweep and ablations of
//! blocking key kinds and comparators. `report(setting)` is what
//! `baraza mpi evaluate` prints.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Instant;

use crate::blocking::{self, BlockKey, KINDS};
use crate::config::{Config, ConfigError};
use crate::features::Features;
use crate::fields::{Field, Gamma};
use crate::generator::{self, Setting};
use crate::model::{Matcher, NameFrequencies};

/// Records sharing a key with more than this many others are not paired by
/// that key (the server's guard; no key of the standard setting reaches it).
pub const MAX_BLOCK: usize = 1_000;

/// Precision, recall and F1 of a set of links.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Quality {
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
}

impl Quality {
    fn new(true_positives: u64, links: u64, true_pairs: u64) -> Quality {
        Quality {
            true_positives,
            false_positives: links - true_positives,
            false_negatives: true_pairs - true_positives,
        }
    }

    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

/// The evaluation of one configuration on one generated dataset.
#[derive(Debug, Clone)]
pub struct Report {
    pub setting: Setting,
    pub records: usize,
    pub true_pairs: u64,
    pub candidate_pairs: u64,
    /// Candidates per record (each pair counts for both records).
    pub mean_candidates: f64,
    pub blocking_recall: f64,
    /// Auto-links judged pair by pair.
    pub auto_links: Quality,
    /// Auto-links closed transitively into clusters (as the server links).
    pub clusters: Quality,
    pub review_pairs: u64,
    pub review_true_pairs: u64,
    /// Recall of the scoring alone: true pairs that would auto-link if
    /// blocking had proposed every one of them.
    pub scoring_recall: f64,
    /// (auto-link threshold, pairwise quality).
    pub threshold_sweep: Vec<(f64, Quality)>,
    /// (key kind, recall with this kind alone, recall without it).
    pub key_ablation: Vec<(String, f64, f64)>,
    /// (removed comparator, quality at the configured threshold).
    pub comparator_ablation: Vec<(String, Quality)>,
    pub pairs_per_second: f64,
    pub auto_link_threshold: f64,
    pub review_threshold: f64,
}

/// A dataset prepared for matching.
pub struct Prepared {
    pub features: Vec<Features>,
    pub clusters: Vec<u32>,
    pub keys: Vec<Vec<BlockKey>>,
}

/// Generates a setting's records and computes their features and keys.
pub fn prepare(setting: &Setting, cfg: &Config) -> Prepared {
    let dataset = generator::generate(setting);
    let features: Vec<Features> = dataset
        .records
        .iter()
        .map(|r| Features::from_patient(&r.patient, &r.source, cfg))
        .collect();
    let keys = features.iter().map(blocking::blocking_keys).collect();
    let clusters = dataset.records.iter().map(|r| r.cluster).collect();
    Prepared {
        features,
        clusters,
        keys,
    }
}

/// The report of the default configuration on `setting`.
pub fn report(setting: &Setting) -> Report {
    report_with_matcher(setting, Matcher::default())
}

/// The report of `cfg` on `setting`.
pub fn report_with(setting: &Setting, cfg: &Config) -> Result<Report, ConfigError> {
    let matcher = Matcher::new(cfg.clone())?;
    Ok(report_with_matcher(setting, matcher))
}

fn report_with_matcher(setting: &Setting, matcher: Matcher) -> Report {
    let data = prepare(setting, matcher.config());
    let matcher = matcher.with_frequencies(NameFrequencies::from_features(&data.features));
    evaluate_prepared(setting, &data, &matcher)
}

/// All true pairs (i < j) of a prepared dataset.
pub fn true_pairs(clusters: &[u32]) -> Vec<(u32, u32)> {
    let mut by_cluster: HashMap<u32, Vec<u32>> = HashMap::new();
    for (i, c) in clusters.iter().enumerate() {
        by_cluster.entry(*c).or_default().push(i as u32);
    }
    let mut pairs = Vec::new();
    for members in by_cluster.values() {
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                pairs.push((i.min(j), i.max(j)));
            }
        }
    }
    pairs.sort_unstable();
    pairs
}

struct Scored {
    pair: (u32, u32),
    same: bool,
    score: f64,
    fixed: [f64; Field::COUNT],
    ids: [f64; crate::fields::MAX_ID_SYSTEMS],
}

/// Evaluates a matcher on prepared data.
pub fn evaluate_prepared(setting: &Setting, data: &Prepared, matcher: &Matcher) -> Report {
    let t = matcher.config().thresholds;
    let truth = true_pairs(&data.clusters);
    let n_true = truth.len() as u64;
    let candidates = blocking::candidate_pairs(&data.keys, MAX_BLOCK);
    let same = |(i, j): (u32, u32)| data.clusters[i as usize] == data.clusters[j as usize];
    let blocked_true = candidates.iter().filter(|p| same(**p)).count() as u64;

    let started = Instant::now();
    let mut total = 0.0;
    for &(i, j) in &candidates {
        total += matcher.score(&data.features[i as usize], &data.features[j as usize]);
    }
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let pairs_per_second = if total.is_nan() {
        0.0
    } else {
        candidates.len() as f64 / elapsed
    };

    let scored: Vec<Scored> = candidates
        .iter()
        .map(|&pair| {
            let (a, b) = (
                &data.features[pair.0 as usize],
                &data.features[pair.1 as usize],
            );
            let gamma: Gamma = matcher.gamma(a, b);
            let (fixed, ids) = matcher.contributions(&gamma, a);
            let score = fixed.iter().sum::<f64>() + ids.iter().sum::<f64>();
            Scored {
                pair,
                same: same(pair),
                score,
                fixed,
                ids,
            }
        })
        .collect();
    let quality_at = |threshold: f64, score: &dyn Fn(&Scored) -> f64| {
        let links = scored.iter().filter(|s| score(s) >= threshold);
        let (mut tp, mut all) = (0, 0);
        for s in links {
            all += 1;
            tp += u64::from(s.same);
        }
        Quality::new(tp, all, n_true)
    };
    let plain = |s: &Scored| s.score;
    let auto_links = quality_at(t.auto_link, &plain);
    let links: Vec<(u32, u32)> = scored
        .iter()
        .filter(|s| s.score >= t.auto_link)
        .map(|s| s.pair)
        .collect();
    let clusters = cluster_quality(data.clusters.len(), &links, &data.clusters, n_true);
    let review: Vec<&Scored> = scored
        .iter()
        .filter(|s| s.score >= t.review && s.score < t.auto_link)
        .collect();
    let scoring_hits = truth
        .iter()
        .filter(|(i, j)| {
            matcher.score(&data.features[*i as usize], &data.features[*j as usize]) >= t.auto_link
        })
        .count() as u64;

    let threshold_sweep = [-6.0, -3.0, 0.0, 3.0, 6.0, 10.0]
        .iter()
        .map(|d| (t.auto_link + d, quality_at(t.auto_link + d, &plain)))
        .collect();
    let mut comparator_ablation = Vec::new();
    for field in Field::ALL {
        let without = |s: &Scored| s.score - s.fixed[field.index()];
        comparator_ablation.push((field.name().to_string(), quality_at(t.auto_link, &without)));
    }
    for (k, system) in matcher.config().identifiers.iter().enumerate() {
        let without = |s: &Scored| s.score - s.ids[k];
        comparator_ablation.push((system.system.clone(), quality_at(t.auto_link, &without)));
    }
    Report {
        setting: setting.clone(),
        records: data.features.len(),
        true_pairs: n_true,
        candidate_pairs: candidates.len() as u64,
        mean_candidates: 2.0 * candidates.len() as f64 / data.features.len().max(1) as f64,
        blocking_recall: ratio(blocked_true, n_true),
        auto_links,
        clusters,
        review_pairs: review.len() as u64,
        review_true_pairs: review.iter().filter(|s| s.same).count() as u64,
        scoring_recall: ratio(scoring_hits, n_true),
        threshold_sweep,
        key_ablation: key_ablation(&data.keys, &truth),
        comparator_ablation,
        pairs_per_second,
        auto_link_threshold: t.auto_link,
        review_threshold: t.review,
    }
}

/// For each key kind: recall of true pairs with that kind alone, and
/// without it.
fn key_ablation(keys: &[Vec<BlockKey>], truth: &[(u32, u32)]) -> Vec<(String, f64, f64)> {
    let shared: Vec<HashSet<&str>> = truth
        .iter()
        .map(|(i, j)| {
            let theirs: HashSet<&BlockKey> = keys[*j as usize].iter().collect();
            keys[*i as usize]
                .iter()
                .filter(|k| theirs.contains(k))
                .map(BlockKey::kind)
                .collect()
        })
        .collect();
    let n = truth.len() as u64;
    KINDS
        .iter()
        .map(|(kind, _)| {
            let alone = shared.iter().filter(|s| s.contains(kind)).count() as u64;
            let without = shared
                .iter()
                .filter(|s| s.iter().any(|k| k != kind))
                .count() as u64;
            (kind.to_string(), ratio(alone, n), ratio(without, n))
        })
        .collect()
}

/// Pairwise quality after closing the links transitively.
fn cluster_quality(n: usize, links: &[(u32, u32)], truth: &[u32], n_true: u64) -> Quality {
    let mut parent: Vec<u32> = (0..n as u32).collect();
    fn find(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            parent[x as usize] = parent[parent[x as usize] as usize];
            x = parent[x as usize];
        }
        x
    }
    for &(a, b) in links {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            parent[ra as usize] = rb;
        }
    }
    let mut component: HashMap<u32, u64> = HashMap::new();
    let mut component_and_truth: HashMap<(u32, u32), u64> = HashMap::new();
    for (i, cluster) in truth.iter().enumerate() {
        let root = find(&mut parent, i as u32);
        *component.entry(root).or_default() += 1;
        *component_and_truth.entry((root, *cluster)).or_default() += 1;
    }
    let pairs = |k: &u64| k * (k.saturating_sub(1)) / 2;
    let linked: u64 = component.values().map(pairs).sum();
    let true_linked: u64 = component_and_truth.values().map(pairs).sum();
    Quality::new(true_linked, linked, n_true)
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "precision {:.4}  recall {:.4}  F1 {:.4}  (TP {}, FP {}, FN {})",
            self.precision(),
            self.recall(),
            self.f1(),
            self.true_positives,
            self.false_positives,
            self.false_negatives
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.setting;
        writeln!(
            f,
            "MPI evaluation: {} base people, {:.0} % duplicated 1–{} times, seed {}",
            s.people,
            s.duplicated_share * 100.0,
            s.max_duplicates,
            s.seed
        )?;
        writeln!(
            f,
            "records {}, true pairs {}",
            self.records, self.true_pairs
        )?;
        writeln!(
            f,
            "thresholds: auto-link {}, review {}",
            self.auto_link_threshold, self.review_threshold
        )?;
        writeln!(
            f,
            "\nblocking: {} candidate pairs, {:.2} candidates per record, recall {:.4}",
            self.candidate_pairs, self.mean_candidates, self.blocking_recall
        )?;
        writeln!(f, "auto-links (pairwise):   {}", self.auto_links)?;
        writeln!(f, "auto-links (clustered):  {}", self.clusters)?;
        writeln!(
            f,
            "review queue: {} pairs ({} of them true)",
            self.review_pairs, self.review_true_pairs
        )?;
        writeln!(
            f,
            "scoring recall without blocking loss: {:.4}",
            self.scoring_recall
        )?;
        writeln!(
            f,
            "\nthreshold sweep (auto-link threshold → pairwise quality):"
        )?;
        for (threshold, q) in &self.threshold_sweep {
            writeln!(f, "  {threshold:>6.1}  {q}")?;
        }
        writeln!(f, "\nblocking keys (kind: recall alone / recall without):")?;
        for (kind, alone, without) in &self.key_ablation {
            writeln!(f, "  {kind:<3} {alone:.4} / {without:.4}")?;
        }
        writeln!(
            f,
            "\ncomparators (removed → pairwise quality at the auto-link threshold):"
        )?;
        for (field, q) in &self.comparator_ablation {
            writeln!(f, "  {field:<40} {q}")?;
        }
        writeln!(
            f,
            "\nscoring speed: {:.0} pairs/s (one thread)",
            self.pairs_per_second
        )
    }
}
