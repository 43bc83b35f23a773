//! ClaML modifiers (EN 14463, ClaML 2.0): the codes a classification
//! builds by combining a class with the classes of a `Modifier`, such as
//! WHO ICD-10's fifth characters for the site of a musculoskeletal
//! disorder (`M00.0` with `0` "Multiple sites" gives `M00.00`).
//!
//! - A `ModifierClass` (`modifier`, `code`, a preferred label) is one value
//!   of a modifier; a modifier's values are its classes in file order.
//! - `ModifiedBy code=… [all=false + ValidModifierClass…] [position=…]` on a
//!   class applies the modifier to that class and everything below it;
//!   `ExcludeModifier code=…` stops an inherited modifier at a class.
//! - The codes are made at the *leaves* of the classification (classes
//!   without subclasses): a modifier on a three-character category whose
//!   four-character subcategories are listed applies to each of them; one
//!   on a category without subcategories applies to it. Several modifiers
//!   on one leaf combine in the order of their `position` (then of their
//!   declaration), each extending the codes the previous one made.
//! - A code is the base code followed by the modifier class's code, with a
//!   dot between them when neither has one (`W00` and `0` give `W00.0`,
//!   `E10` and `.0` give `E10.0`, `M00.0` and `0` give `M00.00`). A code
//!   the file defines as a class is not made again: the class wins.
//! - Its display is the base's display, a comma and the modifier class's
//!   label (its first letter lowered unless the first word is capitals):
//!   "Pyogenic arthritis, multiple sites". Its parent is the base.
//!
//! The reader keeps, for every class, the little this needs (code,
//! parents, whether it has subclasses, display, modifiers), about 1 MB for
//! WHO ICD-10, and makes the codes when the file ends.

use std::collections::{HashMap, HashSet};

/// One `ModifiedBy` of a class.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModifiedBy {
    pub(crate) modifier: String,
    /// `all="false"`: only these modifier classes apply.
    pub(crate) valid: Option<Vec<String>>,
    pub(crate) position: Option<u32>,
    /// Where it is written, for errors.
    pub(crate) line: u64,
}

/// What is kept of one class.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClassInfo {
    pub(crate) code: String,
    pub(crate) kind: Option<String>,
    pub(crate) display: String,
    pub(crate) parents: Vec<String>,
    pub(crate) has_subclasses: bool,
    pub(crate) modified_by: Vec<ModifiedBy>,
    pub(crate) excluded: Vec<String>,
}

/// A code made from a class and modifier classes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Generated {
    pub(crate) code: String,
    pub(crate) display: String,
    pub(crate) parent: String,
    /// The leaf class's kind.
    pub(crate) kind: Option<String>,
    /// The modifier that made the last character(s).
    pub(crate) modifier: String,
}

/// The modifiers' classes: modifier code → (class code, label), in order.
pub(crate) type Modifiers = HashMap<String, Vec<(String, String)>>;

/// The codes the modifiers make, or the line and message of a reference to
/// a modifier or modifier class that the file does not define.
pub(crate) fn generate(
    classes: &[ClassInfo],
    modifiers: &Modifiers,
) -> Result<Vec<Generated>, (u64, String)> {
    let index: HashMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.code.as_str(), i))
        .collect();
    for class in classes {
        for m in &class.modified_by {
            let Some(values) = modifiers.get(&m.modifier) else {
                return Err((
                    m.line,
                    format!(
                        "class {} is modified by {}, which no ModifierClass of this file belongs to",
                        class.code, m.modifier
                    ),
                ));
            };
            for valid in m.valid.iter().flatten() {
                if !values.iter().any(|(code, _)| code == valid) {
                    return Err((
                        m.line,
                        format!(
                            "class {} allows the modifier class {valid} of {}, which is not defined",
                            class.code, m.modifier
                        ),
                    ));
                }
            }
        }
    }
    let mut effective: Vec<Option<Vec<ModifiedBy>>> = vec![None; classes.len()];
    let mut made = Vec::new();
    let mut taken: HashSet<String> = classes.iter().map(|c| c.code.clone()).collect();
    for (i, class) in classes.iter().enumerate() {
        if class.has_subclasses {
            continue;
        }
        let mut mods = effective_of(i, classes, &index, &mut effective, &mut Vec::new());
        if mods.is_empty() {
            continue;
        }
        mods.sort_by_key(|m| m.position.unwrap_or(u32::MAX));
        let mut bases = vec![(class.code.clone(), class.display.clone())];
        for m in &mods {
            let values = modifiers.get(&m.modifier).map_or(&[][..], Vec::as_slice);
            let mut next = Vec::new();
            for (base_code, base_display) in &bases {
                for (value, label) in values {
                    if m.valid.as_ref().is_some_and(|v| !v.contains(value)) {
                        continue;
                    }
                    let code = join(base_code, value);
                    if !taken.insert(code.clone()) {
                        continue;
                    }
                    let display = format!("{base_display}, {}", lower_first(label));
                    made.push(Generated {
                        code: code.clone(),
                        display: display.clone(),
                        parent: base_code.clone(),
                        kind: class.kind.clone(),
                        modifier: m.modifier.clone(),
                    });
                    next.push((code, display));
                }
            }
            if next.is_empty() {
                break;
            }
            bases = next;
        }
    }
    Ok(made)
}

/// The modifiers that apply at class `i`: its ancestors', less those it
/// excludes, plus its own. `visiting` guards against a cyclic hierarchy
/// (which the store refuses anyway).
fn effective_of(
    i: usize,
    classes: &[ClassInfo],
    index: &HashMap<&str, usize>,
    memo: &mut [Option<Vec<ModifiedBy>>],
    visiting: &mut Vec<usize>,
) -> Vec<ModifiedBy> {
    if let Some(known) = &memo[i] {
        return known.clone();
    }
    if visiting.contains(&i) {
        return Vec::new();
    }
    visiting.push(i);
    let class = &classes[i];
    let mut mods: Vec<ModifiedBy> = Vec::new();
    for parent in &class.parents {
        if let Some(&p) = index.get(parent.as_str()) {
            for m in effective_of(p, classes, index, memo, visiting) {
                if !mods.iter().any(|x| x.modifier == m.modifier) {
                    mods.push(m);
                }
            }
        }
    }
    visiting.pop();
    mods.retain(|m| !class.excluded.contains(&m.modifier));
    for own in &class.modified_by {
        mods.retain(|m| m.modifier != own.modifier);
        mods.push(own.clone());
    }
    memo[i] = Some(mods.clone());
    mods
}

/// `base` extended by a modifier class's code.
fn join(base: &str, value: &str) -> String {
    if value.starts_with('.') || base.contains('.') {
        format!("{base}{value}")
    } else {
        format!("{base}.{value}")
    }
}

/// "Multiple sites" → "multiple sites"; "HIV disease" stays.
fn lower_first(label: &str) -> String {
    let mut chars = label.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() => {
            first.to_lowercase().chain(label.chars().skip(1)).collect()
        }
        _ => label.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn class(code: &str, parent: Option<&str>, leaf: bool, display: &str) -> ClassInfo {
        ClassInfo {
            code: code.into(),
            kind: Some("category".into()),
            display: display.into(),
            parents: parent.into_iter().map(str::to_owned).collect(),
            has_subclasses: !leaf,
            ..ClassInfo::default()
        }
    }

    fn by(modifier: &str, position: Option<u32>) -> ModifiedBy {
        ModifiedBy {
            modifier: modifier.into(),
            valid: None,
            position,
            line: 7,
        }
    }

    fn modifiers() -> Modifiers {
        let values = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(c, l)| (c.to_string(), l.to_string()))
                .collect::<Vec<_>>()
        };
        HashMap::from([
            (
                "SITE_5".to_owned(),
                values(&[("0", "Multiple sites"), ("1", "Shoulder region")]),
            ),
            (
                "E10_4".to_owned(),
                values(&[(".0", "With coma"), (".1", "With ketoacidosis")]),
            ),
            (
                "OPEN_6".to_owned(),
                values(&[("0", "Closed"), ("1", "Open")]),
            ),
        ])
    }

    fn codes(made: &[Generated]) -> Vec<(&str, &str, &str)> {
        made.iter()
            .map(|g| (g.code.as_str(), g.display.as_str(), g.parent.as_str()))
            .collect()
    }

    #[test]
    fn a_modifier_on_a_category_applies_to_its_leaves() {
        let mut m00 = class("M00", Some("M00-M25"), false, "Pyogenic arthritis");
        m00.modified_by = vec![by("SITE_5", Some(5))];
        let classes = vec![
            class("M00-M25", None, false, "Arthropathies"),
            m00,
            class("M00.0", Some("M00"), true, "Staphylococcal arthritis"),
        ];
        let made = generate(&classes, &modifiers()).unwrap();
        assert_eq!(
            codes(&made),
            [
                (
                    "M00.00",
                    "Staphylococcal arthritis, multiple sites",
                    "M00.0"
                ),
                (
                    "M00.01",
                    "Staphylococcal arthritis, shoulder region",
                    "M00.0"
                ),
            ]
        );
        assert_eq!(made[0].modifier, "SITE_5");
    }

    #[test]
    fn a_modifier_on_a_leaf_category_makes_its_subcategories() {
        let mut e10 = class("E10", None, true, "Type 1 diabetes mellitus");
        e10.modified_by = vec![by("E10_4", None)];
        let mut w00 = class("W00", None, true, "Fall on same level involving ice");
        w00.modified_by = vec![by("SITE_5", None)];
        let made = generate(&[e10, w00], &modifiers()).unwrap();
        assert_eq!(
            codes(&made),
            [
                ("E10.0", "Type 1 diabetes mellitus, with coma", "E10"),
                (
                    "E10.1",
                    "Type 1 diabetes mellitus, with ketoacidosis",
                    "E10"
                ),
                (
                    "W00.0",
                    "Fall on same level involving ice, multiple sites",
                    "W00"
                ),
                (
                    "W00.1",
                    "Fall on same level involving ice, shoulder region",
                    "W00"
                ),
            ]
        );
    }

    #[test]
    fn exclusions_valid_classes_defined_codes_and_combinations() {
        let mut block = class("S00-S09", None, false, "Injuries");
        block.modified_by = vec![by("OPEN_6", Some(6)), by("SITE_5", Some(5))];
        let mut excluded = class("S01.0", Some("S00-S09"), true, "Wound of scalp");
        excluded.excluded = vec!["OPEN_6".into(), "SITE_5".into()];
        let mut only_open = class("S02", Some("S00-S09"), true, "Fracture of skull");
        only_open.excluded = vec!["SITE_5".into()];
        only_open.modified_by = vec![ModifiedBy {
            valid: Some(vec!["1".into()]),
            ..by("OPEN_6", None)
        }];
        let both = class("S03.0", Some("S00-S09"), true, "Dislocation of jaw");
        let defined = class("S03.00", None, true, "Defined in the file");
        let made = generate(&[block, excluded, only_open, both, defined], &modifiers()).unwrap();
        let made: Vec<&str> = made.iter().map(|g| g.code.as_str()).collect();
        // SITE_5 (position 5) before OPEN_6 (position 6); S03.00 is defined.
        assert_eq!(made, ["S02.1", "S03.01", "S03.010", "S03.011"], "{made:?}");
    }

    #[test]
    fn undefined_modifiers_and_classes_are_errors_at_their_line() {
        let mut bad = class("A00", None, true, "x");
        bad.modified_by = vec![by("NOPE", None)];
        let (line, message) = generate(&[bad], &modifiers()).unwrap_err();
        assert_eq!(line, 7);
        assert!(message.contains("NOPE"), "{message}");
        let mut bad = class("A00", None, true, "x");
        bad.modified_by = vec![ModifiedBy {
            valid: Some(vec!["9".into()]),
            ..by("SITE_5", None)
        }];
        let (_, message) = generate(&[bad], &modifiers()).unwrap_err();
        assert!(message.contains("modifier class 9"), "{message}");
    }

    #[test]
    fn labels_lose_their_capital_unless_an_acronym() {
        for (label, expected) in [
            ("Multiple sites", "multiple sites"),
            ("HIV disease", "HIV disease"),
            ("X", "X"),
            ("", ""),
        ] {
            assert_eq!(lower_first(label), expected);
        }
    }
}
