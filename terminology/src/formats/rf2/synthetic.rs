//! A synthetic RF2 snapshot of any size, in the exact file layout of a
//! release (for tests and the load benchmark): an 8-ary is-a tree under
//! one root, every fifth concept with a second parent, every hundredth
//! concept inactive, three descriptions per concept (FSN, preferred and
//! acceptable synonym) with their US English refset rows, and a
//! finding-site relationship per concept that is not is-a. Identifiers are
//! valid SCTIDs (partition and Verhoeff check digit).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// The version date of the files.
pub const DATE: &str = "20250101";

/// What [`write`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub concepts: usize,
    pub active_concepts: usize,
    pub descriptions: usize,
    /// Active is-a relationships.
    pub is_a: usize,
    /// Active relationships of other types (attributes).
    pub attributes: usize,
}

/// The SCTID of synthetic concept `index` (the root is index 0).
pub fn concept_id(index: usize) -> String {
    sctid(100_000 + index as u64, "00")
}

/// The preferred US English synonym (the display) of concept `index`.
pub fn display(index: usize) -> String {
    format!("Synthetic concept {index}")
}

/// Whether concept `index` is inactive.
pub fn is_inactive(index: usize) -> bool {
    index % 100 == 99
}

/// The active parents of concept `index` (none for the root).
pub fn parents(index: usize) -> Vec<usize> {
    if index == 0 || is_inactive(index) {
        return Vec::new();
    }
    let mut parents = vec![active_ancestor((index - 1) / 8)];
    let first = (index - 1) / 8;
    if index % 5 == 0 && first >= 1 {
        let second = active_ancestor(first - 1);
        if !parents.contains(&second) {
            parents.push(second);
        }
    }
    parents
}

fn active_ancestor(mut index: usize) -> usize {
    while is_inactive(index) {
        index = (index - 1) / 8;
    }
    index
}

/// Writes a snapshot of `concepts` concepts (at least 1) below `dir`, in
/// `Snapshot/Terminology` and `Snapshot/Refset/Language`.
pub fn write(dir: &Path, concepts: usize) -> std::io::Result<Summary> {
    let concepts = concepts.max(1);
    let terminology = dir.join("Snapshot").join("Terminology");
    let language = dir.join("Snapshot").join("Refset").join("Language");
    std::fs::create_dir_all(&terminology)?;
    std::fs::create_dir_all(&language)?;
    let create = |path: std::path::PathBuf, header: &str| -> std::io::Result<BufWriter<File>> {
        let mut file = BufWriter::with_capacity(1 << 20, File::create(path)?);
        writeln!(file, "{header}")?;
        Ok(file)
    };
    let mut concept_file = create(
        terminology.join(format!("sct2_Concept_Snapshot_INT_{DATE}.txt")),
        "id\teffectiveTime\tactive\tmoduleId\tdefinitionStatusId",
    )?;
    let mut description_file = create(
        terminology.join(format!("sct2_Description_Snapshot-en_INT_{DATE}.txt")),
        "id\teffectiveTime\tactive\tmoduleId\tconceptId\tlanguageCode\ttypeId\tterm\tcaseSignificanceId",
    )?;
    let mut relationship_file = create(
        terminology.join(format!("sct2_Relationship_Snapshot_INT_{DATE}.txt")),
        "id\teffectiveTime\tactive\tmoduleId\tsourceId\tdestinationId\trelationshipGroup\ttypeId\tcharacteristicTypeId\tmodifierId",
    )?;
    let mut refset_file = create(
        language.join(format!("der2_cRefset_LanguageSnapshot-en_INT_{DATE}.txt")),
        "id\teffectiveTime\tactive\tmoduleId\trefsetId\treferencedComponentId\tacceptabilityId",
    )?;
    let module = super::INTERNATIONAL_MODULE;
    let mut summary = Summary {
        concepts,
        active_concepts: 0,
        descriptions: 0,
        is_a: 0,
        attributes: 0,
    };
    let (mut relationship_item, mut member) = (0u64, 0u64);
    for index in 0..concepts {
        let id = concept_id(index);
        let active = u8::from(!is_inactive(index));
        summary.active_concepts += usize::from(active);
        let status = if index % 3 == 0 {
            "900000000000073002"
        } else {
            "900000000000074008"
        };
        writeln!(concept_file, "{id}\t{DATE}\t{active}\t{module}\t{status}")?;
        let terms = [
            (
                super::FSN,
                format!("Synthetic concept {index} (finding)"),
                super::PREFERRED,
            ),
            (super::SYNONYM, display(index), super::PREFERRED),
            (
                super::SYNONYM,
                format!("Concept number {index}"),
                super::ACCEPTABLE,
            ),
        ];
        for (n, (kind, term, acceptability)) in terms.into_iter().enumerate() {
            let description = sctid(3_000_000 + 3 * index as u64 + n as u64, "01");
            writeln!(
                description_file,
                "{description}\t{DATE}\t1\t{module}\t{id}\ten\t{kind}\t{term}\t900000000000448009"
            )?;
            member += 1;
            writeln!(
                refset_file,
                "{:08x}-5a1e-4c3b-8d2f-{member:012x}\t{DATE}\t1\t{module}\t{}\t{description}\t{acceptability}",
                member,
                super::US_ENGLISH
            )?;
            summary.descriptions += 1;
        }
        let mut relationships: Vec<(String, u64)> = parents(index)
            .into_iter()
            .map(|parent| (concept_id(parent), super::IS_A))
            .collect();
        summary.is_a += relationships.len();
        if active == 1 && index > 0 {
            // A finding site, which is not part of the hierarchy.
            relationships.push((concept_id(0), 363698007));
            summary.attributes += 1;
        }
        for (destination, kind) in relationships {
            relationship_item += 1;
            let relationship = sctid(7_000_000 + relationship_item, "02");
            writeln!(
                relationship_file,
                "{relationship}\t{DATE}\t1\t{module}\t{id}\t{destination}\t0\t{kind}\t900000000000011006\t900000000000451002"
            )?;
        }
    }
    for mut file in [
        concept_file,
        description_file,
        relationship_file,
        refset_file,
    ] {
        file.flush()?;
    }
    Ok(summary)
}

/// An SCTID: item identifier, partition identifier, Verhoeff check digit.
fn sctid(item: u64, partition: &str) -> String {
    let body = format!("{item}{partition}");
    let check = verhoeff_check_digit(&body);
    format!("{body}{check}")
}

const VERHOEFF_D: [[u8; 10]; 10] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];

const VERHOEFF_P: [[u8; 10]; 8] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];

const VERHOEFF_INV: [u8; 10] = [0, 4, 3, 2, 1, 5, 7, 6, 9, 8];

fn verhoeff_check_digit(digits: &str) -> u8 {
    let mut c = 0u8;
    for (i, digit) in digits.bytes().rev().enumerate() {
        let digit = usize::from(digit - b'0');
        c = VERHOEFF_D[usize::from(c)][usize::from(VERHOEFF_P[(i + 1) % 8][digit])];
    }
    VERHOEFF_INV[usize::from(c)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits_of_known_sctids() {
        // Published ids: clinical finding, SNOMED CT root, is-a, FSN.
        for id in ["404684003", "138875005", "116680003", "900000000000003001"] {
            let (body, check) = id.split_at(id.len() - 1);
            assert_eq!(verhoeff_check_digit(body).to_string(), check, "{id}");
        }
    }

    #[test]
    fn parents_are_active_and_earlier() {
        for index in 1..2000 {
            for parent in parents(index) {
                assert!(parent < index && !is_inactive(parent), "{index} → {parent}");
            }
        }
        assert_eq!(parents(0), Vec::<usize>::new());
        assert_eq!(parents(10), vec![1, 0]);
    }
}
