//! SMART on FHIR scopes, v1 and v2: parsing a token's scope list and
//! answering which context, if any, allows an interaction on a resource type
//! (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).

use std::fmt;

/// Whose data a scope reaches. Ordered from the narrowest to the broadest,
/// so that the broadest grant wins when several scopes allow the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Context {
    /// The patient in context (the token's `patient` claim) only.
    Patient,
    /// Whatever the signed-in user may see.
    User,
    /// A backend service, without a user.
    System,
}

impl Context {
    fn parse(text: &str) -> Option<Context> {
        match text {
            "patient" => Some(Context::Patient),
            "user" => Some(Context::User),
            "system" => Some(Context::System),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Context::Patient => "patient",
            Context::User => "user",
            Context::System => "system",
        }
    }
}

/// The five SMART v2 permissions (`c`, `r`, `u`, `d`, `s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interaction {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

impl Interaction {
    const ALL: [Interaction; 5] = [
        Interaction::Create,
        Interaction::Read,
        Interaction::Update,
        Interaction::Delete,
        Interaction::Search,
    ];

    fn letter(self) -> char {
        match self {
            Interaction::Create => 'c',
            Interaction::Read => 'r',
            Interaction::Update => 'u',
            Interaction::Delete => 'd',
            Interaction::Search => 's',
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of interactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Permissions(u8);

impl Permissions {
    pub fn contains(self, interaction: Interaction) -> bool {
        self.0 & interaction.bit() != 0
    }

    fn of(interactions: &[Interaction]) -> Permissions {
        Permissions(interactions.iter().fold(0, |bits, i| bits | i.bit()))
    }

    /// SMART v2: a non-empty subsequence of `cruds`, in that order.
    fn parse_v2(text: &str) -> Option<Permissions> {
        let mut letters = Interaction::ALL.iter().peekable();
        let mut bits = 0;
        for letter in text.chars() {
            // Skip the letters before this one; each may appear once, in order.
            loop {
                let interaction = letters.next()?;
                if interaction.letter() == letter {
                    bits |= interaction.bit();
                    break;
                }
            }
        }
        (bits != 0).then_some(Permissions(bits))
    }

    /// SMART v1: `read` is read and search, `write` is create, update and
    /// delete, `*` is both.
    fn parse_v1(text: &str) -> Option<Permissions> {
        use Interaction::*;
        match text {
            "read" => Some(Permissions::of(&[Read, Search])),
            "write" => Some(Permissions::of(&[Create, Update, Delete])),
            "*" => Some(Permissions::of(&Interaction::ALL)),
            _ => None,
        }
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for interaction in Interaction::ALL {
            if self.contains(interaction) {
                write!(f, "{}", interaction.letter())?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeVersion {
    V1,
    V2,
}

/// The resource types a scope reaches: `*` or one type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResourceTypes {
    All,
    One(String),
}

impl ResourceTypes {
    fn parse(text: &str) -> Option<ResourceTypes> {
        if text == "*" {
            return Some(ResourceTypes::All);
        }
        let mut chars = text.chars();
        let starts_upper = chars.next().is_some_and(|c| c.is_ascii_uppercase());
        (starts_upper && chars.all(|c| c.is_ascii_alphanumeric()))
            .then(|| ResourceTypes::One(text.to_owned()))
    }

    fn includes(&self, resource_type: &str) -> bool {
        match self {
            ResourceTypes::All => true,
            ResourceTypes::One(name) => name == resource_type,
        }
    }
}

/// One clinical-data scope such as `patient/Observation.rs?category=vital-signs`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SmartScope {
    pub context: Context,
    pub resource: ResourceTypes,
    pub permissions: Permissions,
    /// The `?param=value` restriction of a v2 scope, as written. Baraza does
    /// not evaluate these yet, so a restricted scope allows nothing (see
    /// [`Scopes::unsupported`]): granting the whole type would be wider than
    /// what the authorisation server meant.
    pub query: Option<String>,
    pub version: ScopeVersion,
}

impl SmartScope {
    /// Parses one scope; `None` when it is not a SMART clinical-data scope
    /// (`openid`, `launch/patient`, `fhirUser`, a bare `*.*`, ...).
    pub fn parse(text: &str) -> Option<SmartScope> {
        let (context, rest) = text.split_once('/')?;
        let context = Context::parse(context)?;
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (resource, permissions) = rest.split_once('.')?;
        let resource = ResourceTypes::parse(resource)?;
        let (permissions, version) = match Permissions::parse_v1(permissions) {
            // Query restrictions exist only in v2.
            Some(p) if query.is_none() => (p, ScopeVersion::V1),
            Some(_) => return None,
            None => (Permissions::parse_v2(permissions)?, ScopeVersion::V2),
        };
        if query.is_some_and(|q| q.is_empty()) {
            return None;
        }
        Some(SmartScope {
            context,
            resource,
            permissions,
            query: query.map(str::to_owned),
            version,
        })
    }

    /// Whether this scope alone allows `interaction` on `resource_type`.
    pub fn allows(&self, interaction: Interaction, resource_type: &str) -> bool {
        self.query.is_none()
            && self.permissions.contains(interaction)
            && self.resource.includes(resource_type)
    }
}

/// Renders the v2 form, e.g. v1 `user/*.read` as `user/*.rs`.
impl fmt::Display for SmartScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let resource = match &self.resource {
            ResourceTypes::All => "*",
            ResourceTypes::One(name) => name,
        };
        write!(
            f,
            "{}/{resource}.{}",
            self.context.as_str(),
            self.permissions
        )?;
        if let Some(query) = &self.query {
            write!(f, "?{query}")?;
        }
        Ok(())
    }
}

/// A token's scopes: the SMART clinical-data scopes, parsed, and the rest
/// (`openid`, `launch`, `offline_access`, unrecognised ones) as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes {
    smart: Vec<SmartScope>,
    other: Vec<String>,
}

impl Scopes {
    /// Parses a space-separated scope list (RFC 6749 section 3.3).
    pub fn parse(list: &str) -> Scopes {
        Scopes::from_items(list.split(' '))
    }

    /// Parses scopes given one by one (the `scp` array some providers use).
    pub fn from_items<'a>(items: impl IntoIterator<Item = &'a str>) -> Scopes {
        let mut scopes = Scopes::default();
        for item in items.into_iter().filter(|item| !item.is_empty()) {
            match SmartScope::parse(item) {
                Some(scope) => scopes.smart.push(scope),
                None => scopes.other.push(item.to_owned()),
            }
        }
        scopes
    }

    pub fn smart(&self) -> &[SmartScope] {
        &self.smart
    }

    pub fn other(&self) -> &[String] {
        &self.other
    }

    /// Scopes Baraza understands but does not honour yet: those with a
    /// `?param=value` restriction. They allow nothing.
    pub fn unsupported(&self) -> impl Iterator<Item = &SmartScope> {
        self.smart.iter().filter(|scope| scope.query.is_some())
    }

    /// The broadest context whose scopes allow `interaction` on
    /// `resource_type`, or `None` when no scope does.
    pub fn granted_by(&self, interaction: Interaction, resource_type: &str) -> Option<Context> {
        self.smart
            .iter()
            .filter(|scope| scope.allows(interaction, resource_type))
            .map(|scope| scope.context)
            .max()
    }

    pub fn allows(&self, interaction: Interaction, resource_type: &str) -> bool {
        self.granted_by(interaction, resource_type).is_some()
    }
}

#[cfg(test)]
mod tests;
