//! Normalisation of values for the search index (FHIR R4 search.html): the
//! pure functions the indexer applies at write time and the search code
//! applies to parameter values, per search parameter type.
//!
//! * strings ([`fold_string`], [`string_values`]): case and accent folding;
//! * dates ([`date_range`], [`parse_date_param`], [`date_matches`]):
//!   half-open UTC ranges in microseconds since the Unix epoch;
//! * numbers and quantities ([`parse_number_param`],
//!   [`parse_quantity_param`], [`number_matches`], [`canonical_quantity`]);
//! * URIs ([`uri_prefixes`]) for `:above` and `:below`.
//!
//! ```
//! use fhir::search_values::{fold_string, parse_date_param, date_matches, Prefix};
//! assert_eq!(fold_string("Núñez"), "nunez");
//! let (prefix, search) = parse_date_param("ge2020-03").unwrap();
//! assert_eq!(prefix, Prefix::Ge);
//! let (_, value) = parse_date_param("2020-03-04T10:00Z").unwrap();
//! assert!(date_matches(prefix, search, value, 0));
//! ```

mod date;
mod number;
mod string;
mod units;
mod uri;

pub use date::{
    DateRange, NEG_INFINITY, POS_INFINITY, date_matches, date_range, parse_date_param,
    parse_date_value,
};
pub use number::{
    NumberRange, QuantityParam, number_matches, parse_number_param, parse_quantity_param,
};
pub use string::{fold_string, string_values};
pub use units::{UCUM, canonical_quantity};
pub use uri::uri_prefixes;

use std::fmt;

/// A search prefix (search.html#prefix). A value without a prefix is `eq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

impl Prefix {
    /// The two-letter spelling.
    pub fn code(self) -> &'static str {
        match self {
            Prefix::Eq => "eq",
            Prefix::Ne => "ne",
            Prefix::Gt => "gt",
            Prefix::Lt => "lt",
            Prefix::Ge => "ge",
            Prefix::Le => "le",
            Prefix::Sa => "sa",
            Prefix::Eb => "eb",
            Prefix::Ap => "ap",
        }
    }

    /// Splits a leading prefix off a parameter value (`ge2020` →
    /// `(Ge, "2020")`); no prefix means `Eq`.
    pub fn split(text: &str) -> (Prefix, &str) {
        const ALL: [Prefix; 9] = [
            Prefix::Eq,
            Prefix::Ne,
            Prefix::Gt,
            Prefix::Lt,
            Prefix::Ge,
            Prefix::Le,
            Prefix::Sa,
            Prefix::Eb,
            Prefix::Ap,
        ];
        for p in ALL {
            if let Some(rest) = text.strip_prefix(p.code()) {
                return (p, rest);
            }
        }
        (Prefix::Eq, text)
    }
}

/// A search parameter value that cannot be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueError {
    pub message: String,
}

impl ValueError {
    pub(crate) fn new(message: impl Into<String>) -> ValueError {
        ValueError {
            message: message.into(),
        }
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid search value: {}", self.message)
    }
}

impl std::error::Error for ValueError {}
