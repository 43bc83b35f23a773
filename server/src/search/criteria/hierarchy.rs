//! The internal token form of `:below`/`:above` over a stored code
//! system's closure (see `search::token_sets`): more codes than are worth
//! listing are matched against the terminology tables in the database.

/// One concept's place in a stored code system's closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub system: String,
    /// The code system row's tenant ('' for global content) and id.
    pub cs_tenant: String,
    pub system_id: i64,
    pub concept_id: i32,
    /// Descendants (with the concept) when true, else ancestors.
    pub below: bool,
}

/// The internal modifier `token_sets` writes a [`Hierarchy`] with; a
/// client's use of it is refused there.
pub const HIERARCHY_MODIFIER: &str = "baraza-hierarchy";

impl Hierarchy {
    /// The value of the internal modifier.
    pub fn to_value(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            if self.below { "below" } else { "above" },
            self.cs_tenant,
            self.system_id,
            self.concept_id,
            self.system
        )
    }

    pub(super) fn from_value(value: &str) -> Option<Hierarchy> {
        let mut parts = value.splitn(5, '|');
        let below = match parts.next()? {
            "below" => true,
            "above" => false,
            _ => return None,
        };
        Some(Hierarchy {
            below,
            cs_tenant: parts.next()?.to_owned(),
            system_id: parts.next()?.parse().ok()?,
            concept_id: parts.next()?.parse().ok()?,
            system: parts.next()?.to_owned(),
        })
    }
}
