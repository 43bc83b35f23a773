//! Duplicate detection for `|`, `union()`, `distinct()`, `intersect()`,
//! `exclude()`, `subsetOf()` and `repeat()` in linear time: items are
//! bucketed by a hash consistent with `=` (or with node identity for
//! `repeat()`), and only items in the same bucket are compared.

use super::compare::equal;
use super::decimal::Decimal;
use super::value::{FhirType, Item, is_quantity_node};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Below this many items a linear scan is cheaper than hashing.
const SMALL: usize = 16;

/// A hash of a decimal's value (not its written scale).
fn hash_decimal(d: Decimal, h: &mut DefaultHasher) {
    let n = d.normalized();
    (n.mantissa(), n.scale()).hash(h);
}

/// A structural hash of JSON, insensitive to object key order and to the
/// written scale of numbers (as `=` on elements is).
fn hash_json(v: &Json) -> u64 {
    let mut h = DefaultHasher::new();
    match v {
        Json::Null => 0u8.hash(&mut h),
        Json::Bool(b) => b.hash(&mut h),
        Json::Number(n) => match Decimal::parse(n.as_str()) {
            Some(d) => hash_decimal(d, &mut h),
            None => n.as_str().hash(&mut h),
        },
        Json::String(s) => s.hash(&mut h),
        Json::Array(a) => {
            for x in a {
                hash_json(x).hash(&mut h);
            }
        }
        Json::Object(m) => {
            let mut acc = 0u64;
            for (k, x) in m {
                let mut e = DefaultHasher::new();
                k.hash(&mut e);
                hash_json(x).hash(&mut e);
                acc = acc.wrapping_add(e.finish());
            }
            acc.hash(&mut h);
        }
    }
    h.finish()
}

/// A hash such that `equal(a, b) == Some(true)` implies equal hashes;
/// `None` for items compared some other way (dates, quantities, stubs).
fn value_hash(item: &Item<'_>) -> Option<u64> {
    let mut h = DefaultHasher::new();
    if let Item::Fhir(n) = item {
        if let FhirType::Node(id) = n.ty {
            if is_quantity_node(id) {
                return None;
            }
            return Some(hash_json(n.value?));
        }
    }
    match item.to_system()? {
        Item::String(s) => {
            0u8.hash(&mut h);
            s.hash(&mut h);
        }
        Item::Integer(i) => hash_decimal(Decimal::from_i64(i), &mut h),
        Item::Decimal(d) => hash_decimal(d, &mut h),
        Item::Boolean(b) => {
            1u8.hash(&mut h);
            b.hash(&mut h);
        }
        _ => return None,
    }
    Some(h.finish())
}

/// Items seen so far, by hash bucket.
pub struct Seen {
    buckets: HashMap<u64, Vec<usize>>,
    unhashed: Vec<usize>,
    by_identity: bool,
}

fn identity_hash(item: &Item<'_>) -> Option<u64> {
    match item {
        Item::Fhir(n) => {
            let mut h = DefaultHasher::new();
            n.value.map(std::ptr::from_ref).hash(&mut h);
            n.ext.map(std::ptr::from_ref).hash(&mut h);
            Some(h.finish())
        }
        other => value_hash(other),
    }
}

/// Node identity for elements, value equality otherwise.
pub fn identical(a: &Item<'_>, b: &Item<'_>) -> bool {
    match (a, b) {
        (Item::Fhir(x), Item::Fhir(y)) => {
            let ptr = |p: Option<&Json>, q: Option<&Json>| match (p, q) {
                (Some(p), Some(q)) => std::ptr::eq(p, q),
                (None, None) => true,
                _ => false,
            };
            ptr(x.value, y.value) && ptr(x.ext, y.ext) && x.ty == y.ty
        }
        (Item::Fhir(_), _) | (_, Item::Fhir(_)) => false,
        _ => same(a, b),
    }
}

/// Identity or value equality, for de-duplication.
pub fn same(a: &Item<'_>, b: &Item<'_>) -> bool {
    match (a.json(), b.json()) {
        (Some(x), Some(y)) if std::ptr::eq(x, y) => true,
        _ => equal(a, b) == Some(true),
    }
}

impl Seen {
    /// An index of `items` by value (`by_identity` false) or node identity.
    pub fn new(items: &[Item<'_>], by_identity: bool) -> Seen {
        let mut seen = Seen {
            buckets: HashMap::new(),
            unhashed: Vec::new(),
            by_identity,
        };
        for (i, item) in items.iter().enumerate() {
            seen.record(item, i);
        }
        seen
    }

    fn key(&self, item: &Item<'_>) -> Option<u64> {
        if self.by_identity {
            identity_hash(item)
        } else {
            value_hash(item)
        }
    }

    fn record(&mut self, item: &Item<'_>, index: usize) {
        match self.key(item) {
            Some(k) => self.buckets.entry(k).or_default().push(index),
            None => self.unhashed.push(index),
        }
    }

    /// Whether `items` (the indexed collection) holds an item matching `x`.
    pub fn contains(&self, items: &[Item<'_>], x: &Item<'_>) -> bool {
        let matches = |i: &usize| {
            items.get(*i).is_some_and(|o| {
                if self.by_identity {
                    identical(o, x)
                } else {
                    same(o, x)
                }
            })
        };
        match self.key(x) {
            Some(k) => self.buckets.get(&k).is_some_and(|b| b.iter().any(matches)),
            None => self.unhashed.iter().any(matches),
        }
    }

    /// Appends `x` to `items` unless already there; returns whether it was added.
    pub fn insert<'a>(&mut self, items: &mut Vec<Item<'a>>, x: Item<'a>) -> bool {
        if self.contains(items, &x) {
            return false;
        }
        self.record(&x, items.len());
        items.push(x);
        true
    }
}

/// Appends items not already present (by `=`), for `|` and `union()`.
pub fn push_distinct<'a>(out: &mut Vec<Item<'a>>, items: Vec<Item<'a>>) {
    if out.len() + items.len() <= SMALL {
        for item in items {
            if !out.iter().any(|o| same(o, &item)) {
                out.push(item);
            }
        }
        return;
    }
    let mut seen = Seen::new(out, false);
    for item in items {
        seen.insert(out, item);
    }
}

/// Whether `hay` holds an item equal to each of `needles`, one answer per
/// needle (for `intersect`, `exclude`, `subsetOf`).
pub fn membership(hay: &[Item<'_>], needles: &[Item<'_>]) -> Vec<bool> {
    if hay.len() * needles.len() <= SMALL * SMALL {
        return needles
            .iter()
            .map(|x| hay.iter().any(|h| same(h, x)))
            .collect();
    }
    let seen = Seen::new(hay, false);
    needles.iter().map(|x| seen.contains(hay, x)).collect()
}
