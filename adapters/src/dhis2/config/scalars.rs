//! The checked building blocks of the mapping config: DHIS2 uids, id
//! prefixes, URIs, time-zone offsets, codings and uid-keyed maps. Each
//! refuses a bad value while the YAML is read, so the error carries the line
//! and key path of the value.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;

/// Whether `text` is a DHIS2 uid: 11 letters or digits, a letter first.
pub fn is_uid(text: &str) -> bool {
    text.len() == 11
        && text.bytes().all(|b| b.is_ascii_alphanumeric())
        && text.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
}

/// A DHIS2 uid.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Uid(String);

impl Uid {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Uid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_str(deserializer, |text| {
            if is_uid(text) {
                Ok(Uid(text.to_owned()))
            } else {
                Err(format!(
                    "{text:?} is not a DHIS2 uid (11 letters or digits, a letter first)"
                ))
            }
        })
    }
}

/// A map that refuses a key given twice (YAML itself would keep the last).
#[derive(Debug, Clone)]
pub struct UniqueMap<K, T>(pub BTreeMap<K, T>);

/// A map keyed by DHIS2 uids.
pub type UidMap<T> = UniqueMap<Uid, T>;

/// What a [`UniqueMap`] key needs: order, and text to look it up by.
pub trait MapKey: Ord + for<'de> Deserialize<'de> {
    fn as_key(&self) -> &str;
    /// The key for a look-up (not checked: a bad one just finds nothing).
    fn lookup(key: &str) -> Self;
}

impl MapKey for Uid {
    fn as_key(&self) -> &str {
        &self.0
    }
    fn lookup(key: &str) -> Self {
        Uid(key.to_owned())
    }
}

impl MapKey for String {
    fn as_key(&self) -> &str {
        self
    }
    fn lookup(key: &str) -> Self {
        key.to_owned()
    }
}

impl<K, T> Default for UniqueMap<K, T> {
    fn default() -> Self {
        UniqueMap(BTreeMap::new())
    }
}

impl<K: MapKey, T> UniqueMap<K, T> {
    pub fn get(&self, key: &str) -> Option<&T> {
        self.0.get(&K::lookup(key))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.0.iter().map(|(key, value)| (key.as_key(), value))
    }
}

impl<'de, K: MapKey, T: Deserialize<'de>> Deserialize<'de> for UniqueMap<K, T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<K, T>(std::marker::PhantomData<(K, T)>);
        impl<'de, K: MapKey, T: Deserialize<'de>> Visitor<'de> for MapVisitor<K, T> {
            type Value = UniqueMap<K, T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = map.next_key::<K>()? {
                    if out.contains_key(&key) {
                        return Err(de::Error::custom(format!(
                            "the key {} is given twice",
                            key.as_key()
                        )));
                    }
                    let value = map.next_value()?;
                    out.insert(key, value);
                }
                Ok(UniqueMap(out))
            }
        }
        deserializer.deserialize_map(MapVisitor(std::marker::PhantomData))
    }
}

/// An absolute URI (`http(s)://`, `urn:`), used as a code or identifier
/// system; a trailing `/` is dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SystemUri(String);

impl SystemUri {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn join(&self, segment: &str) -> String {
        format!("{}/{segment}", self.0)
    }
}

impl<'de> Deserialize<'de> for SystemUri {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_str(deserializer, system_uri)
    }
}

fn system_uri(text: &str) -> Result<SystemUri, String> {
    let absolute = ["http://", "https://", "urn:"]
        .iter()
        .any(|scheme| text.starts_with(scheme) && text.len() > scheme.len());
    if !absolute || text.chars().any(char::is_whitespace) {
        return Err(format!(
            "{text:?} is not an absolute URI (http://, https:// or urn:)"
        ));
    }
    Ok(SystemUri(text.trim_end_matches('/').to_owned()))
}

/// The prefix of every resource id made from a DHIS2 uid, so that two
/// sources in one tenant never collide: up to 16 of `A-Z a-z 0-9 - .`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdPrefix(String);

impl IdPrefix {
    /// The FHIR id for a DHIS2 uid.
    pub fn id(&self, uid: &str) -> String {
        format!("{}{uid}", self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for IdPrefix {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_str(deserializer, id_prefix)
    }
}

fn id_prefix(text: &str) -> Result<IdPrefix, String> {
    let allowed = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if text.len() > 16 || !allowed {
        return Err(format!(
            "{text:?} is not an id prefix (at most 16 of A-Z a-z 0-9 - .)"
        ));
    }
    Ok(IdPrefix(text.to_owned()))
}

/// A UTC offset (`Z`, `+03:00`, `-05:30`) for DHIS2 timestamps, which carry
/// none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UtcOffset(String);

impl Default for UtcOffset {
    fn default() -> Self {
        UtcOffset("Z".into())
    }
}

impl UtcOffset {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for UtcOffset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_str(deserializer, utc_offset)
    }
}

fn utc_offset(text: &str) -> Result<UtcOffset, String> {
    let bytes = text.as_bytes();
    let valid = text == "Z"
        || (bytes.len() == 6
            && matches!(bytes[0], b'+' | b'-')
            && bytes[1..3].iter().all(u8::is_ascii_digit)
            && bytes[3] == b':'
            && bytes[4..6].iter().all(u8::is_ascii_digit)
            && text[1..3] <= *"14"
            && text[4..6] <= *"59");
    if !valid {
        return Err(format!("{text:?} is not a UTC offset (Z, +03:00, -05:30)"));
    }
    Ok(UtcOffset(text.to_owned()))
}

/// A FHIR Coding: system and code, with an optional display.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coding {
    pub system: SystemUri,
    pub code: NonEmpty,
    #[serde(default)]
    pub display: Option<NonEmpty>,
}

impl Coding {
    pub fn to_json(&self) -> Value {
        let mut coding = json!({"system": self.system.as_str(), "code": self.code.as_str()});
        if let Some(display) = &self.display {
            coding["display"] = json!(display.as_str());
        }
        coding
    }

    /// A CodeableConcept with this one coding.
    pub fn concept(&self) -> Value {
        json!({"coding": [self.to_json()]})
    }
}

/// A string with something other than spaces in it, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NonEmpty(String);

impl NonEmpty {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_str(deserializer, |text| {
            let trimmed = text.trim();
            if trimmed.is_empty() {
                return Err("expected a non-empty string".into());
            }
            Ok(NonEmpty(trimmed.to_owned()))
        })
    }
}

/// Reads a scalar as text and checks it inside the deserializer's own
/// visit, so that a failure gets the scalar's line and key path.
fn checked_str<'de, D, T>(
    deserializer: D,
    check: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct Text<F>(F);
    impl<'de, T, F: FnOnce(&str) -> Result<T, String>> Visitor<'de> for Text<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
            (self.0)(text).map_err(E::custom)
        }
    }
    deserializer.deserialize_str(Text(check))
}

/// Deserializes `T` through its raw form `R` and the check
/// `T::try_from(R)`, failing inside the mapping's own visit so that the
/// error gets the mapping's line and key path (serde's `try_from` would
/// fail after the mapping is read, at its parent's position).
pub(crate) fn deserialize_checked<'de, D, R, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    R: Deserialize<'de>,
    T: TryFrom<R, Error = String>,
{
    struct Checked<R, T>(std::marker::PhantomData<(R, T)>);
    impl<'de, R: Deserialize<'de>, T: TryFrom<R, Error = String>> Visitor<'de> for Checked<R, T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            let raw = R::deserialize(de::value::MapAccessDeserializer::new(map))?;
            T::try_from(raw).map_err(de::Error::custom)
        }
    }
    deserializer.deserialize_map(Checked(std::marker::PhantomData))
}
