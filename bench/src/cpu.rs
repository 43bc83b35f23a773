//! CPU accounting from /proc: seconds of user+system time used by all
//! processes whose command name matches, to attribute a phase's cost to
//! baraza, PostgreSQL or the load generator.

use std::collections::HashMap;

/// Clock ticks per second on Linux (USER_HZ), fixed at 100 on every
/// mainstream architecture.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Clone, Default)]
pub struct Snapshot(HashMap<String, u64>);

/// Sums utime+stime per group of exact command names.
pub fn snapshot(groups: &[(&str, &[&str])]) -> Snapshot {
    let mut totals: HashMap<String, u64> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Snapshot(totals);
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        // Fields after the name: state is 0; utime 11, stime 12.
        let ticks = fields
            .get(11)
            .and_then(|u| u.parse::<u64>().ok())
            .unwrap_or(0)
            + fields
                .get(12)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
        for (group, prefixes) in groups {
            if prefixes.contains(&comm) {
                *totals.entry((*group).to_owned()).or_default() += ticks;
            }
        }
    }
    Snapshot(totals)
}

/// CPU seconds per group between two snapshots. Processes that exited in
/// between are not counted, so long-lived servers are measured exactly.
pub fn used(before: &Snapshot, after: &Snapshot) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = after
        .0
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.saturating_sub(*before.0.get(k).unwrap_or(&0)) as f64 / TICKS_PER_SECOND,
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

pub const GROUPS: &[(&str, &[&str])] = &[
    ("baraza", &["baraza"]),
    ("postgres", &["postgres"]),
    ("bench", &["baraza-bench"]),
];
