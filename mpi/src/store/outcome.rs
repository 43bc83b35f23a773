//! What the store hands back to the server: the golden Patients to write or
//! retire, the `Patient.link` entries to set on source Patients, the pairs
//! queued for review and the link changes made (already written to
//! `mpi_link_log`). The store never writes FHIR resources itself.

use serde::Serialize;
use serde_json::Value;

use crate::model::{Comparison, MatchGrade};

/// The kind of a record's link to its golden record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// Scored at or above auto_link (or alone in its cluster).
    Auto,
    /// A reviewer accepted the pair.
    Manual,
    /// Merged into another record by `$merge`.
    Merged,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Auto => "auto",
            LinkKind::Manual => "manual",
            LinkKind::Merged => "merged",
        }
    }

    pub(crate) fn parse(text: &str) -> LinkKind {
        match text {
            "manual" => LinkKind::Manual,
            "merged" => LinkKind::Merged,
            _ => LinkKind::Auto,
        }
    }
}

/// What happened to a record's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkAction {
    /// Joined a cluster with other records.
    Link,
    /// Got a golden record of its own.
    Separate,
    /// Left its cluster because it no longer matches it.
    Unlink,
    /// Merged into another record (`$merge`).
    Merge,
    /// A merge undone (`$unmerge`).
    Unmerge,
    /// Removed from the index (its Patient was deleted).
    Remove,
}

impl LinkAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkAction::Link => "link",
            LinkAction::Separate => "separate",
            LinkAction::Unlink => "unlink",
            LinkAction::Merge => "merge",
            LinkAction::Unmerge => "unmerge",
            LinkAction::Remove => "remove",
        }
    }
}

/// One link change, as written to `mpi_link_log`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkChange {
    pub patient_id: String,
    pub golden_before: Option<String>,
    pub golden_after: Option<String>,
    pub action: LinkAction,
    pub kind: Option<LinkKind>,
    /// The score that decided, when one did.
    pub score: Option<f64>,
    /// Why, in words ("score 31.2 ≥ auto_link 20 with Patient/r7").
    pub rule: String,
    /// Who or what: "mpi" for automatic decisions, else the user.
    pub actor: String,
}

/// `Patient.link.type` (R4 `link-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LinkType {
    /// The golden record to consult (source → golden).
    #[serde(rename = "refer")]
    Refer,
    /// Another record of the same person (golden → source).
    #[serde(rename = "seealso")]
    SeeAlso,
    /// This record was merged into the other (`$merge` source → target).
    #[serde(rename = "replaced-by")]
    ReplacedBy,
    /// The other record was merged into this one (target → source).
    #[serde(rename = "replaces")]
    Replaces,
}

impl LinkType {
    pub fn code(self) -> &'static str {
        match self {
            LinkType::Refer => "refer",
            LinkType::SeeAlso => "seealso",
            LinkType::ReplacedBy => "replaced-by",
            LinkType::Replaces => "replaces",
        }
    }
}

/// One `Patient.link` entry: the other Patient's id and the type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatientLink {
    pub other: String,
    pub link_type: LinkType,
}

impl PatientLink {
    /// The FHIR element: `{"other": {"reference": "Patient/…"}, "type": …}`.
    pub fn to_fhir(&self) -> Value {
        serde_json::json!({
            "other": {"reference": format!("Patient/{}", self.other)},
            "type": self.link_type.code(),
        })
    }
}

/// The MPI-managed `Patient.link` entries of one source Patient: the
/// server replaces the links that point at golden records or come from
/// merges with exactly these (other links stay).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceLinks {
    pub patient_id: String,
    pub links: Vec<PatientLink>,
}

/// A golden Patient to write (create or update `Patient/{id}`) or to
/// retire (its cluster became empty: delete it, or mark it inactive).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GoldenChange {
    Write { id: String, patient: Value },
    Retire { id: String },
}

impl GoldenChange {
    pub fn id(&self) -> &str {
        match self {
            GoldenChange::Write { id, .. } | GoldenChange::Retire { id } => id,
        }
    }
}

/// Review queue status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    Pending,
    Accepted,
    Rejected,
    Deferred,
}

impl ReviewStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Pending => "pending",
            ReviewStatus::Accepted => "accepted",
            ReviewStatus::Rejected => "rejected",
            ReviewStatus::Deferred => "deferred",
        }
    }

    pub(crate) fn parse(text: &str) -> ReviewStatus {
        match text {
            "accepted" => ReviewStatus::Accepted,
            "rejected" => ReviewStatus::Rejected,
            "deferred" => ReviewStatus::Deferred,
            _ => ReviewStatus::Pending,
        }
    }
}

/// A pair of records, ordered (`a < b`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Pair {
    pub a: String,
    pub b: String,
}

impl Pair {
    /// The pair of two different ids, in order.
    pub fn new(x: &str, y: &str) -> Pair {
        let (a, b) = if x <= y { (x, y) } else { (y, x) };
        Pair {
            a: a.to_string(),
            b: b.to_string(),
        }
    }
}

/// A pair queued for review (or whose queued entry was refreshed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewPair {
    pub pair: Pair,
    pub score: f64,
    pub reason: String,
}

/// Everything the server must do after a store call, in its transaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LinkOutcome {
    /// The golden record of the record the call was about (empty when it
    /// was removed).
    pub golden_id: String,
    /// Golden Patients to write or retire; only those whose content
    /// changed since last handed out.
    pub goldens: Vec<GoldenChange>,
    /// Source Patients whose MPI links are to be set. The indexed record
    /// itself is always included, so that the server can set its links
    /// on the resource it is writing.
    pub source_links: Vec<SourceLinks>,
    /// Pairs queued (or re-scored) for review.
    pub reviews: Vec<ReviewPair>,
    /// Link changes (already in `mpi_link_log`).
    pub changes: Vec<LinkChange>,
}

impl LinkOutcome {
    /// Adds another outcome (a later call): later golden content and
    /// links replace earlier ones of the same id.
    pub fn absorb(&mut self, later: LinkOutcome) {
        for golden in later.goldens {
            self.goldens.retain(|g| g.id() != golden.id());
            self.goldens.push(golden);
        }
        for links in later.source_links {
            self.source_links
                .retain(|l| l.patient_id != links.patient_id);
            self.source_links.push(links);
        }
        self.reviews.extend(later.reviews);
        self.changes.extend(later.changes);
        self.golden_id = later.golden_id;
    }

    /// The links to set on one source Patient, if they are to change.
    pub fn links_of(&self, patient_id: &str) -> Option<&[PatientLink]> {
        self.source_links
            .iter()
            .find(|l| l.patient_id == patient_id)
            .map(|l| l.links.as_slice())
    }

    /// The golden Patient to write with this id, if any.
    pub fn golden(&self, id: &str) -> Option<&Value> {
        self.goldens.iter().find_map(|g| match g {
            GoldenChange::Write { id: i, patient } if i == id => Some(patient),
            _ => None,
        })
    }
}

/// One `Patient/$match` result: a source record, its score and grade.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchResult {
    pub patient_id: String,
    /// The golden record of the record's cluster.
    pub golden_id: Option<String>,
    /// The Fellegi–Sunter score (sum of log2 weights).
    pub score: f64,
    /// `Bundle.entry.search.score`: the score over the `certain`
    /// threshold, clamped to [0, 1].
    pub search_score: f64,
    pub grade: MatchGrade,
    pub comparison: Comparison,
}

/// The records cross-referenced with an identifier (IHE PIXm).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrossReference {
    pub patient_id: String,
    pub golden_id: String,
    /// The record's identifiers as stored (FHIR `Identifier` elements).
    pub identifiers: Vec<Value>,
}
