//! Baraza's own permission model, on top of SMART scopes: groups carry
//! permissions, and a caller's rights are the union over the groups its
//! token names. Basic permissions are per resource type (create, read,
//! update, delete, search; `*` for every type); purpose permissions name
//! actions that are not an interaction on one type (`$export`,
//! `audit-read`, `tenant-admin`, …). System groups ship with Baraza and
//! cannot be changed; a tenant's admins define the others.

use super::scopes::Interaction;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Every purpose permission Baraza knows.
pub const PURPOSES: &[&str] = &[
    "$export",
    "$expunge",
    "$match",
    "mpi-review",
    "terminology-load",
    "audit-read",
    "tenant-admin",
];

/// The interactions in the order and spelling of the admin API.
const INTERACTIONS: [(&str, Interaction); 5] = [
    ("create", Interaction::Create),
    ("read", Interaction::Read),
    ("update", Interaction::Update),
    ("delete", Interaction::Delete),
    ("search", Interaction::Search),
];

/// A named set of permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub description: String,
    /// Shipped with Baraza: read-only through the admin API.
    pub system: bool,
    /// Resource type (or `*`) to the interactions allowed on it.
    pub types: BTreeMap<String, BTreeSet<&'static str>>,
    pub purposes: BTreeSet<String>,
}

/// Why a group document was refused, and where (a path in the document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupProblem {
    pub path: String,
    pub message: String,
}

impl Group {
    /// The admin API's JSON form.
    pub fn to_json(&self) -> Value {
        let permissions: Map<String, Value> = self
            .types
            .iter()
            .map(|(t, interactions)| (t.clone(), json!(interactions)))
            .collect();
        json!({
            "name": self.name,
            "description": self.description,
            "system": self.system,
            "permissions": permissions,
            "purposes": self.purposes,
        })
    }

    /// Reads a (non-system) group from the admin API's JSON form.
    pub fn from_json(name: &str, body: &Value) -> Result<Group, GroupProblem> {
        let problem = |path: &str, message: String| GroupProblem {
            path: path.to_owned(),
            message,
        };
        if !valid_name(name) {
            return Err(problem(
                "name",
                "a group name is 1 to 63 lowercase letters, digits or '-', starting with a letter"
                    .into(),
            ));
        }
        if let Some(given) = body.get("name").and_then(Value::as_str) {
            if given != name {
                return Err(problem(
                    "name",
                    "the name differs from the one in the URL".into(),
                ));
            }
        }
        let description = match body.get("description") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(text)) => text.clone(),
            Some(_) => return Err(problem("description", "expected a string".into())),
        };
        let mut types = BTreeMap::new();
        if let Some(permissions) = body.get("permissions") {
            let Some(permissions) = permissions.as_object() else {
                return Err(problem(
                    "permissions",
                    "expected an object of resource types".into(),
                ));
            };
            for (resource_type, list) in permissions {
                let path = format!("permissions.{resource_type}");
                if resource_type != "*" && fhir::id::ResourceType::parse(resource_type).is_none() {
                    return Err(problem(
                        &path,
                        format!("{resource_type} is not an R4 resource type"),
                    ));
                }
                let Some(list) = list.as_array() else {
                    return Err(problem(&path, "expected a list of interactions".into()));
                };
                let mut allowed = BTreeSet::new();
                for (i, item) in list.iter().enumerate() {
                    let known = item
                        .as_str()
                        .and_then(|s| INTERACTIONS.iter().find(|(name, _)| *name == s));
                    match known {
                        Some((name, _)) => allowed.insert(*name),
                        None => {
                            return Err(problem(
                                &format!("{path}[{i}]"),
                                "expected create, read, update, delete or search".into(),
                            ));
                        }
                    };
                }
                types.insert(resource_type.clone(), allowed);
            }
        }
        let mut purposes = BTreeSet::new();
        if let Some(list) = body.get("purposes") {
            let Some(list) = list.as_array() else {
                return Err(problem("purposes", "expected a list of purposes".into()));
            };
            for (i, item) in list.iter().enumerate() {
                match item.as_str().filter(|p| PURPOSES.contains(p)) {
                    Some(purpose) => purposes.insert(purpose.to_owned()),
                    None => {
                        return Err(problem(
                            &format!("purposes[{i}]"),
                            format!("expected one of {}", PURPOSES.join(", ")),
                        ));
                    }
                };
            }
        }
        Ok(Group {
            name: name.to_owned(),
            description,
            system: false,
            types,
            purposes,
        })
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn system_group(
    name: &str,
    description: &str,
    all_types: &[&'static str],
    purposes: &[&str],
) -> Group {
    let mut types = BTreeMap::new();
    if !all_types.is_empty() {
        types.insert("*".to_owned(), all_types.iter().copied().collect());
    }
    Group {
        name: name.to_owned(),
        description: description.to_owned(),
        system: true,
        types,
        purposes: purposes.iter().map(|p| (*p).to_owned()).collect(),
    }
}

/// The groups that ship with Baraza, the same in every tenant.
pub fn system_groups() -> Vec<Group> {
    const ALL: &[&str] = &["create", "read", "update", "delete", "search"];
    vec![
        system_group(
            "clinician",
            "care staff: read, search, create and update records; no deletion",
            &["create", "read", "update", "search"],
            &[],
        ),
        system_group(
            "registry-integrator",
            "a registry or system feeding data: full access to what it submits",
            ALL,
            &[],
        ),
        system_group(
            "analyst",
            "read, search and bulk export",
            &["read", "search"],
            &["$export"],
        ),
        system_group(
            "data-steward",
            "keeps data clean: corrections, deletions, MPI review and terminology",
            ALL,
            &["$expunge", "$match", "mpi-review", "terminology-load"],
        ),
        {
            let mut auditor =
                system_group("auditor", "reads the audit trail", &[], &["audit-read"]);
            auditor.types.insert(
                "AuditEvent".to_owned(),
                ["read", "search"].into_iter().collect(),
            );
            auditor
        },
        system_group(
            "patient",
            "a patient using a portal: read access, narrowed to their own record by patient/ scopes",
            &["read", "search"],
            &[],
        ),
        system_group(
            "tenant-admin",
            "everything in the tenant, including its groups",
            ALL,
            PURPOSES,
        ),
    ]
}

/// What a caller may do: the union of its groups' permissions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rights {
    types: BTreeMap<String, BTreeSet<&'static str>>,
    purposes: BTreeSet<String>,
}

impl Rights {
    /// The union over `groups` of those named in `names` (unknown names
    /// give nothing).
    pub fn of<'a>(groups: impl IntoIterator<Item = &'a Group>, names: &[String]) -> Rights {
        let mut rights = Rights::default();
        for group in groups.into_iter().filter(|g| names.contains(&g.name)) {
            for (t, interactions) in &group.types {
                rights
                    .types
                    .entry(t.clone())
                    .or_default()
                    .extend(interactions.iter().copied());
            }
            rights.purposes.extend(group.purposes.iter().cloned());
        }
        rights
    }

    /// Whether `interaction` on `resource_type` is allowed (`*` for every
    /// type: allowed only by a `*` permission).
    pub fn allows(&self, interaction: Interaction, resource_type: &str) -> bool {
        let Some((name, _)) = INTERACTIONS.iter().find(|(_, i)| *i == interaction) else {
            return false;
        };
        ["*", resource_type]
            .iter()
            .filter_map(|t| self.types.get(*t))
            .any(|set| set.contains(name))
    }

    pub fn has_purpose(&self, purpose: &str) -> bool {
        self.purposes.contains(purpose)
    }

    /// The admin API's JSON form, as a group's (`permissions`, `purposes`).
    pub fn to_json(&self) -> Value {
        let permissions: Map<String, Value> = self
            .types
            .iter()
            .map(|(t, interactions)| (t.clone(), json!(interactions)))
            .collect();
        json!({ "permissions": permissions, "purposes": self.purposes })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rights(names: &[&str], custom: &[Group]) -> Rights {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let all: Vec<Group> = system_groups()
            .into_iter()
            .chain(custom.iter().cloned())
            .collect();
        Rights::of(&all, &names)
    }

    #[test]
    fn rights_are_the_union_of_the_groups() {
        let nurses = Group::from_json(
            "ward-nurses",
            &json!({"permissions": {"Observation": ["create", "read"], "Patient": ["search"]},
                    "purposes": ["$match"]}),
        )
        .unwrap();
        let r = rights(&["ward-nurses", "auditor"], std::slice::from_ref(&nurses));
        for (interaction, t, expected) in [
            (Interaction::Create, "Observation", true),
            (Interaction::Read, "Observation", true),
            (Interaction::Update, "Observation", false),
            (Interaction::Search, "Patient", true),
            (Interaction::Read, "Patient", false),
            (Interaction::Read, "*", false),
        ] {
            assert_eq!(r.allows(interaction, t), expected, "{interaction:?} {t}");
        }
        assert!(r.has_purpose("$match") && r.has_purpose("audit-read"));
        assert!(!r.has_purpose("tenant-admin"));
        let admin = rights(&["tenant-admin"], &[]);
        assert!(admin.allows(Interaction::Delete, "*") && admin.has_purpose("tenant-admin"));
        let nobody = rights(&["no-such-group"], &[]);
        assert!(!nobody.allows(Interaction::Read, "Patient"));
        let clinician = rights(&["clinician"], &[]);
        assert!(clinician.allows(Interaction::Update, "Condition"));
        assert!(!clinician.allows(Interaction::Delete, "Condition"));
    }

    #[test]
    fn group_documents_are_checked_with_the_path_of_the_problem() {
        let check = |name: &str, body: Value, path: &str| {
            let problem = Group::from_json(name, &body).unwrap_err();
            assert_eq!(problem.path, path, "{body}");
        };
        check("Bad_Name", json!({}), "name");
        check("g", json!({"name": "other"}), "name");
        check(
            "g",
            json!({"permissions": {"Patiant": ["read"]}}),
            "permissions.Patiant",
        );
        check(
            "g",
            json!({"permissions": {"Patient": ["read", "write"]}}),
            "permissions.Patient[1]",
        );
        check(
            "g",
            json!({"purposes": ["tenant-admin", "root"]}),
            "purposes[1]",
        );
        check("g", json!({"description": 5}), "description");
        let round = Group::from_json("g", &json!({"permissions": {"*": ["read"]}})).unwrap();
        assert_eq!(Group::from_json("g", &round.to_json()).unwrap(), round);
    }
}
