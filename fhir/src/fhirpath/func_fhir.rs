//! FHIR-specific and environment functions: `extension()`, `resolve()`,
//! `hasValue()`, `getValue()`, `children()`, `descendants()`, `type()`,
//! `memberOf()`, `conformsTo()`, `htmlChecks()`, `now()`, `today()`,
//! `timeOfDay()`, and SQL-on-FHIR's `getResourceKey()` and
//! `getReferenceKey([type])`.

use super::eval::{Evaluator, Res, Scope, err, singleton};
use super::functions::{Func, arg};
use super::navigate::{child, children, is_type, reference_stub, type_info};
use super::parser::Expr;
use super::value::{Collection, Item};
use crate::definitions::structure_model;
use crate::id::{ResourceType, is_valid_id};
use serde_json::Value as Json;
use std::borrow::Cow;

const CORE_PROFILE: &str = "http://hl7.org/fhir/StructureDefinition/";

pub fn call<'a>(
    ev: &Evaluator<'_, '_, 'a>,
    func: Func,
    input: Collection<'a>,
    args: &'a [Expr],
    scope: Scope<'_, 'a>,
) -> Res<'a> {
    match func {
        Func::Children => {
            let mut out = Vec::new();
            for item in &input {
                children(item, &mut out);
            }
            Ok(out)
        }
        Func::Descendants => {
            let mut out = Vec::new();
            let mut current = input;
            while !current.is_empty() {
                let mut next = Vec::new();
                for item in &current {
                    children(item, &mut next);
                }
                out.extend(next.iter().cloned());
                current = next;
            }
            Ok(out)
        }
        Func::Now => Ok(vec![Item::DateTime(ev.now())]),
        Func::Today => Ok(vec![Item::Date(ev.now().date_part())]),
        Func::TimeOfDay => {
            let mut t = ev.now();
            t.tz = None;
            t.zulu = false;
            Ok(vec![Item::Time(t)])
        }
        Func::Type => Ok(input
            .iter()
            .map(|x| Item::Type(Box::new(type_info(x))))
            .collect()),
        Func::HasValue => Ok(vec![Item::Boolean(
            matches!(input.as_slice(), [x] if matches!(x, Item::Fhir(_)) && x.has_value()),
        )]),
        Func::GetValue => Ok(match input.as_slice() {
            [x] if matches!(x, Item::Fhir(_)) && x.has_value() => {
                x.to_system().into_iter().collect()
            }
            _ => Vec::new(),
        }),
        Func::Extension => {
            let url = arg(ev, args, 0, scope)?;
            let Some(url) = singleton(&url, "extension")? else {
                return Ok(Vec::new());
            };
            let Some(url) = url.as_str() else {
                return err("extension() expects a url string");
            };
            let mut exts = Vec::new();
            for item in &input {
                child(item, "extension", "_extension", &mut exts);
            }
            Ok(exts
                .into_iter()
                .filter(|e| e.json().and_then(|j| j.get("url")).and_then(Json::as_str) == Some(url))
                .collect())
        }
        Func::Resolve => {
            let mut out = Vec::new();
            for item in &input {
                let reference = match item.json() {
                    Some(Json::Object(map)) => map.get("reference").and_then(Json::as_str),
                    _ => item.as_str(),
                };
                if let Some(r) = reference.and_then(|r| resolve(ev, r)) {
                    out.push(r);
                }
            }
            Ok(out)
        }
        Func::GetResourceKey => Ok(input.iter().filter_map(resource_key).collect()),
        Func::GetReferenceKey => {
            let wanted = match args.first() {
                Some(Expr::TypeRef(spec)) => {
                    let known = matches!(spec.namespace.as_deref(), None | Some("FHIR"))
                        && ResourceType::parse(&spec.name).is_some();
                    if !known {
                        return err(format!(
                            "getReferenceKey() expects a resource type, not '{}'",
                            spec.name
                        ));
                    }
                    Some(spec.name.as_str())
                }
                _ => None,
            };
            Ok(input
                .iter()
                .filter_map(|item| reference_key(item, wanted))
                .collect())
        }
        Func::HtmlChecks => Ok(vec![Item::Boolean(true)]),
        Func::MemberOf | Func::ConformsTo => {
            let url = arg(ev, args, 0, scope)?;
            let Some(url) = singleton(&url, func.name())?.and_then(Item::as_str) else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for item in &input {
                let answer = if func == Func::MemberOf {
                    ev.env.member_of.as_ref().and_then(|f| f(item, url))
                } else {
                    conforms_to(ev, item, url)?
                };
                out.extend(answer.map(Item::Boolean));
            }
            Ok(out)
        }
        _ => err(format!("{}() is not supported here", func.name())),
    }
}

fn conforms_to<'a>(
    ev: &Evaluator<'_, '_, 'a>,
    item: &Item<'a>,
    url: &str,
) -> Result<Option<bool>, super::EvalError> {
    if let Some(f) = &ev.env.conforms_to {
        if let Some(answer) = f(item, url) {
            return Ok(Some(answer));
        }
    }
    let known = url
        .strip_prefix(CORE_PROFILE)
        .filter(|name| structure_model().node_named(name).is_some());
    match known {
        Some(name) => {
            let target = super::navigate::TypeTarget::Fhir(
                structure_model().node_named(name).map_or("", |n| &*n.name),
            );
            Ok(Some(is_type(item, target, false)))
        }
        None if ev.env.conforms_to.is_some() => Ok(None),
        None => err(format!("unknown profile '{url}'")),
    }
}

/// Resolves a reference: contained resources (`#id`), Bundle entries (by
/// `fullUrl` or type and id), the caller's resolver, and finally a typed
/// stub when the reference names a resource type.
fn resolve<'a>(ev: &Evaluator<'_, '_, 'a>, reference: &str) -> Option<Item<'a>> {
    if let Some(id) = reference.strip_prefix('#') {
        if id.is_empty() {
            return Some(Item::resource(ev.resource));
        }
        return ev
            .resource
            .get("contained")
            .and_then(Json::as_array)?
            .iter()
            .find(|c| c.get("id").and_then(Json::as_str) == Some(id))
            .map(Item::resource);
    }
    let root = ev.env.root_resource.unwrap_or(ev.resource);
    if root.get("resourceType").and_then(Json::as_str) == Some("Bundle") {
        if let Some(found) = find_in_bundle(root, reference) {
            return Some(Item::resource(found));
        }
    }
    if let Some(found) = ev.env.resolver.as_ref().and_then(|f| f(reference)) {
        return Some(Item::resource(found));
    }
    reference_stub(reference)
}

fn find_in_bundle<'a>(bundle: &'a Json, reference: &str) -> Option<&'a Json> {
    let entries = bundle.get("entry")?.as_array()?;
    let path = reference.split("/_history/").next().unwrap_or(reference);
    let mut parts = path.rsplit('/');
    let id = parts.next();
    let ty = parts.next();
    entries.iter().find_map(|e| {
        let resource = e.get("resource")?;
        let full_url = e.get("fullUrl").and_then(Json::as_str);
        if full_url == Some(reference) {
            return Some(resource);
        }
        let matches = resource.get("resourceType").and_then(Json::as_str) == ty
            && resource.get("id").and_then(Json::as_str) == id
            && ty.is_some();
        matches.then_some(resource)
    })
}

/// `getResourceKey()`: the resource's logical `id`, so that the key of a
/// resource equals `getReferenceKey()` of every reference to it
/// (SQL-on-FHIR v2, "Required additional functions").
fn resource_key<'a>(item: &Item<'a>) -> Option<Item<'a>> {
    let json = item.json()?;
    json.get("resourceType")?;
    let id = json.get("id")?.as_str()?;
    Some(Item::String(Cow::Borrowed(id)))
}

/// `getReferenceKey([type])`: the `id` a Reference (or a reference string)
/// points at, when its type is `wanted` (or any type when `None`).
fn reference_key<'a>(item: &Item<'a>, wanted: Option<&str>) -> Option<Item<'a>> {
    let reference = match item.json() {
        Some(Json::Object(map)) => map.get("reference").and_then(Json::as_str),
        Some(Json::String(s)) => Some(s.as_str()),
        _ => None,
    }?;
    let (resource_type, id) = split_reference(reference)?;
    if wanted.is_some_and(|w| w != resource_type) {
        return None;
    }
    Some(Item::String(Cow::Borrowed(id)))
}

/// The type and id a literal reference names: `Patient/123`, an absolute
/// URL ending in `Patient/123`, either with `/_history/{vid}`. Contained
/// (`#id`), `urn:` and logical references have no key.
pub(crate) fn split_reference(reference: &str) -> Option<(&str, &str)> {
    let path = reference
        .split_once("/_history/")
        .map_or(reference, |(path, _)| path);
    let mut parts = path.rsplit('/');
    let id = parts.next()?;
    let resource_type = parts.next()?;
    (ResourceType::parse(resource_type).is_some() && is_valid_id(id)).then_some((resource_type, id))
}
