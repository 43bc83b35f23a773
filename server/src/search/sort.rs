//! `_sort` (search.html#sort) and the keyset cursor behind `_page`.

use super::registry::{ParamKind, Registry};
use crate::error::ApiError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What a sort key orders by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortBy {
    Id,
    LastUpdated,
    /// A parameter's values; for a union parameter, its two parts' rows
    /// (`union_of`).
    Param {
        param: String,
        kind: ParamKind,
        union_of: Option<[&'static str; 2]>,
        /// At most one value per resource of every searched type, as its
        /// expression and the R4 model tell
        /// (`fhir::fhirpath::Expression::at_most_one`).
        single: bool,
    },
}

/// One `_sort` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub by: SortBy,
    pub descending: bool,
}

impl SortKey {
    /// The SQL type of the key's value, for binding a cursor's text back.
    pub fn sql_type(&self) -> &'static str {
        match &self.by {
            SortBy::Id => "text",
            SortBy::LastUpdated => "bigint",
            SortBy::Param { kind, .. } => match kind {
                ParamKind::Date => "bigint",
                ParamKind::Number | ParamKind::Quantity => "numeric",
                _ => "text",
            },
        }
    }
}

impl ParamKind {
    /// The table and value expression (on alias `k`) a parameter of this
    /// kind sorts by: dates by their lower bound ascending and upper bound
    /// descending, quantities in canonical units where known.
    pub fn sort_column(self, descending: bool) -> (&'static str, &'static str) {
        match self {
            ParamKind::Date if descending => ("search_date", "k.hi"),
            ParamKind::Date => ("search_date", "k.lo"),
            ParamKind::Number => ("search_number", "k.value"),
            ParamKind::Quantity => ("search_quantity", "coalesce(k.canon_value, k.value)"),
            ParamKind::String => ("search_string", "k.folded"),
            ParamKind::Reference => (
                "search_reference",
                "coalesce(k.target_type || '/' || k.target_id, k.url)",
            ),
            ParamKind::Uri => ("search_uri", "k.uri"),
            ParamKind::Token | ParamKind::Composite | ParamKind::Position => {
                ("search_token", "k.code")
            }
        }
    }
}

/// Parses `_sort=a,-b` for a search of `types` (the parameter must be
/// defined for each).
pub fn parse_sort(
    registry: &Registry,
    types: &[String],
    value: &str,
) -> Result<Vec<SortKey>, ApiError> {
    value
        .split(',')
        .map(|item| {
            let item = item.trim();
            let (descending, code) = match item.strip_prefix('-') {
                Some(code) => (true, code),
                None => (false, item),
            };
            let by = match code {
                "_id" => SortBy::Id,
                "_lastUpdated" => SortBy::LastUpdated,
                _ => {
                    let kinds: Vec<Option<ParamKind>> = types
                        .iter()
                        .map(|t| registry.param(t, code).map(|p| p.kind))
                        .collect();
                    let union_of = types
                        .iter()
                        .find_map(|t| registry.param(t, code).and_then(|p| p.union_of));
                    let single = union_of.is_none()
                        && types.iter().all(|t| {
                            registry
                                .param(t, code)
                                .is_some_and(|p| p.expression.at_most_one(t))
                        });
                    match kinds.first().copied().flatten() {
                        Some(kind)
                            if kinds.iter().all(|k| *k == Some(kind))
                                && !matches!(kind, ParamKind::Composite | ParamKind::Position) =>
                        {
                            SortBy::Param {
                                param: code.to_owned(),
                                kind,
                                union_of,
                                single,
                            }
                        }
                        _ => {
                            return Err(ApiError::invalid(format!(
                                "cannot sort by {code:?}: not a sortable search parameter of {}",
                                types.join(", ")
                            ))
                            .at("_sort"));
                        }
                    }
                }
            };
            Ok(SortKey { by, descending })
        })
        .collect()
}

/// Where a page ends: the last row's sort-key values (as text, None for a
/// resource without a value) and its type and id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    #[serde(rename = "t")]
    pub res_type: String,
    #[serde(rename = "i")]
    pub id: String,
    #[serde(rename = "k", default)]
    pub keys: Vec<Option<String>>,
}

impl Cursor {
    /// The opaque `_page` value.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Decodes a `_page` value made by [`Cursor::encode`] for a search with
    /// `n_keys` sort keys.
    pub fn decode(text: &str, n_keys: usize) -> Result<Cursor, ApiError> {
        let bad = || {
            ApiError::invalid(
                "_page is not a page link this server made; follow the Bundle's links",
            )
            .at("_page")
        };
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if cursor.keys.len() != n_keys {
            return Err(bad());
        }
        Ok(cursor)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_parse() {
        let keys =
            parse_sort(Registry::global(), &["Condition".into()], "-onset-date,_id").unwrap();
        assert_eq!(
            keys,
            vec![
                SortKey {
                    by: SortBy::Param {
                        param: "onset-date".into(),
                        kind: ParamKind::Date,
                        union_of: None,
                        single: true,
                    },
                    descending: true
                },
                SortKey {
                    by: SortBy::Id,
                    descending: false
                }
            ]
        );
        let e = parse_sort(Registry::global(), &["Patient".into()], "nonsense").unwrap_err();
        assert_eq!(e.issues[0].expression, vec!["_sort".to_string()]);
    }

    #[test]
    fn cursors_round_trip_and_reject_forgeries() {
        let c = Cursor {
            res_type: "Patient".into(),
            id: "a".into(),
            keys: vec![Some("12".into()), None],
        };
        assert_eq!(Cursor::decode(&c.encode(), 2).unwrap(), c);
        assert!(Cursor::decode(&c.encode(), 1).is_err());
        assert!(Cursor::decode("not-base64!", 0).is_err());
    }
}
