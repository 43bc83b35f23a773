//! The compared fields and their agreement levels: the vocabulary shared by
//! comparators, the model, the configuration file and training.

use serde::{Deserialize, Serialize};

/// The largest number of configured identifier systems.
pub const MAX_ID_SYSTEMS: usize = 8;

/// The level of a field that one of the records does not have. It carries
/// no evidence (weight 0) and is not a level of the configuration.
pub const MISSING: u8 = u8::MAX;

/// A field compared by a fixed comparator. Identifier systems named in the
/// configuration are compared in addition, one field each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Given,
    Family,
    NameOrder,
    BirthDate,
    Sex,
    Phone,
    Locality,
    Address,
    OtherIdentifier,
}

impl Field {
    pub const ALL: [Field; 9] = [
        Field::Given,
        Field::Family,
        Field::NameOrder,
        Field::BirthDate,
        Field::Sex,
        Field::Phone,
        Field::Locality,
        Field::Address,
        Field::OtherIdentifier,
    ];
    pub const COUNT: usize = Field::ALL.len();

    /// The field's name in the configuration file and in explanations.
    pub fn name(self) -> &'static str {
        match self {
            Field::Given => "given",
            Field::Family => "family",
            Field::NameOrder => "name_order",
            Field::BirthDate => "birth_date",
            Field::Sex => "sex",
            Field::Phone => "phone",
            Field::Locality => "locality",
            Field::Address => "address",
            Field::OtherIdentifier => "other_identifier",
        }
    }

    /// The field with this configuration name.
    pub fn parse(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The names of the field's levels, from strongest agreement to
    /// disagreement; a level is its index in this list.
    pub fn levels(self) -> &'static [&'static str] {
        match self {
            Field::Given => GIVEN_LEVELS,
            Field::Family => FAMILY_LEVELS,
            Field::NameOrder => &["straight", "swapped"],
            Field::BirthDate => DATE_LEVELS,
            Field::Sex | Field::Phone | Field::OtherIdentifier => IDENTIFIER_LEVELS,
            Field::Locality => &["city_and_district", "city_or_district", "disagree"],
            Field::Address => &["exact", "similar", "disagree"],
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Levels of the given-name comparator.
pub const GIVEN_LEVELS: &[&str] = &[
    "exact", "nickname", "jw_high", "phonetic", "jw_mid", "initial", "disagree",
];
/// Levels of the family-name comparator.
pub const FAMILY_LEVELS: &[&str] = &["exact", "jw_high", "phonetic", "jw_mid", "disagree"];
/// Levels of the birth-date comparator.
pub const DATE_LEVELS: &[&str] = &[
    "exact",
    "transposed",
    "one_digit",
    "partial",
    "year_month",
    "disagree",
];
/// Levels of an identifier system, of sex and of phone.
pub const IDENTIFIER_LEVELS: &[&str] = &["agree", "disagree"];

/// Level indices, named, for the comparators.
pub mod level {
    pub const EXACT: u8 = 0;
    pub const GIVEN_NICKNAME: u8 = 1;
    pub const GIVEN_JW_HIGH: u8 = 2;
    pub const GIVEN_PHONETIC: u8 = 3;
    pub const GIVEN_JW_MID: u8 = 4;
    pub const GIVEN_INITIAL: u8 = 5;
    pub const GIVEN_DISAGREE: u8 = 6;
    pub const FAMILY_JW_HIGH: u8 = 1;
    pub const FAMILY_PHONETIC: u8 = 2;
    pub const FAMILY_JW_MID: u8 = 3;
    pub const FAMILY_DISAGREE: u8 = 4;
    pub const STRAIGHT: u8 = 0;
    pub const SWAPPED: u8 = 1;
    pub const DATE_TRANSPOSED: u8 = 1;
    pub const DATE_ONE_DIGIT: u8 = 2;
    pub const DATE_PARTIAL: u8 = 3;
    pub const DATE_YEAR_MONTH: u8 = 4;
    pub const DATE_DISAGREE: u8 = 5;
    pub const AGREE: u8 = 0;
    pub const DISAGREE: u8 = 1;
    pub const LOCALITY_BOTH: u8 = 0;
    pub const LOCALITY_ONE: u8 = 1;
    pub const LOCALITY_DISAGREE: u8 = 2;
    pub const ADDRESS_SIMILAR: u8 = 1;
    pub const ADDRESS_DISAGREE: u8 = 2;
}

/// The agreement level of every field for one pair of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Gamma {
    /// One level per `Field`, in `Field::ALL` order (`MISSING` allowed).
    pub fixed: [u8; Field::COUNT],
    /// One level per configured identifier system, in configuration order.
    pub ids: [u8; MAX_ID_SYSTEMS],
}

impl Gamma {
    pub fn level(&self, field: Field) -> u8 {
        self.fixed[field.index()]
    }
}
