//! Organisation units → an Organization + Location pair each, as IHE mCSD
//! models facilities and jurisdictions (ITI-90): identifiers in the
//! source's system, `partOf` along the hierarchy, the Location managed by
//! its Organization, a Point as `position`, a Polygon or MultiPolygon as the
//! `location-boundary-geojson` extension, closed units inactive, and types
//! from the mCSD code system and the configured organisation unit groups.

use super::config::Config;
use super::fields;
use super::hierarchy::{Placed, place};
use crate::output::{BundleBuilder, Mapped, RecordError};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::HashSet;

const MCSD_TYPES: &str =
    "https://profiles.ihe.net/ITI/mCSD/CodeSystem/IHE.mCSD.Organization.Location.Types";
const MCSD_PROFILES: &str = "https://profiles.ihe.net/ITI/mCSD/StructureDefinition/IHE.mCSD";
const BOUNDARY: &str = "http://hl7.org/fhir/StructureDefinition/location-boundary-geojson";
const PHYSICAL_TYPES: &str = "http://terminology.hl7.org/CodeSystem/location-physical-type";

/// Maps a metadata payload `{"organisationUnits": [...]}`. `known` holds the
/// uids of units imported before, which may be parents here.
pub fn map_org_units(payload: &Value, cfg: &Config, known: &HashSet<String>) -> Mapped {
    let mut out = BundleBuilder::default();
    let Some(units) = fields::array(payload, "organisationUnits") else {
        out.error(RecordError::error(
            None,
            "organisationUnits",
            "the payload has no organisationUnits array",
        ));
        return out.finish();
    };
    let (placed, errors) = place(units, known);
    for error in errors {
        out.error(error);
    }
    for unit in &placed {
        let kind = Kind::of(unit.level, cfg);
        let (organization, location) = pair(unit, kind, cfg, &mut out);
        let at = format!("organisationUnits[{}]", unit.index);
        out.put(organization, Some(&unit.uid), &at);
        out.put(location, Some(&unit.uid), &at);
        out.end_record();
    }
    out.finish()
}

/// mCSD's two kinds of unit.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Facility,
    Jurisdiction,
}

impl Kind {
    fn of(level: u32, cfg: &Config) -> Kind {
        if level >= cfg.org_units.facility_level {
            Kind::Facility
        } else {
            Kind::Jurisdiction
        }
    }

    fn code(self) -> (&'static str, &'static str) {
        match self {
            Kind::Facility => ("facility", "Facility"),
            Kind::Jurisdiction => ("jurisdiction", "Jurisdiction"),
        }
    }

    fn profile(self, resource: &str) -> String {
        let kind = match self {
            Kind::Facility => "Facility",
            Kind::Jurisdiction => "Jurisdiction",
        };
        format!("{MCSD_PROFILES}.{kind}{resource}")
    }
}

/// The Organization and the Location of one unit.
fn pair(unit: &Placed<'_>, kind: Kind, cfg: &Config, out: &mut BundleBuilder) -> (Value, Value) {
    let raw = unit.unit;
    let at = format!("organisationUnits[{}]", unit.index);
    let id = cfg.id(&unit.uid);
    let name = fields::text(raw, &["name", "displayName", "shortName"])
        .unwrap_or_else(|| unit.uid.clone());
    let closed = match fields::text(raw, &["closedDate"]) {
        None => false,
        Some(closed) => {
            if let Err(message) = fields::date(&closed) {
                out.error(
                    RecordError::error(Some(&unit.uid), &format!("{at}.closedDate"), message)
                        .warning(),
                );
            }
            true
        }
    };
    let mut identifiers = vec![json!({"system": cfg.org_unit_system(), "value": unit.uid})];
    if let Some(code) = fields::text(raw, &["code"]) {
        identifiers.push(json!({"system": cfg.org_unit_code_system(), "value": code}));
    }
    let alias: Vec<String> = fields::text(raw, &["shortName"])
        .into_iter()
        .filter(|short| *short != name)
        .collect();
    let (code, display) = kind.code();
    let mcsd_type = json!({"coding": [{"system": MCSD_TYPES, "code": code, "display": display}]});
    let (organization_types, location_types) = group_types(raw, cfg);

    let mut organization = json!({
        "resourceType": "Organization",
        "id": id,
        "meta": {"profile": [kind.profile("Organization")]},
        "identifier": identifiers,
        "active": !closed,
        "type": std::iter::once(mcsd_type.clone()).chain(organization_types).collect::<Vec<_>>(),
        "name": name,
    });
    let mut location = json!({
        "resourceType": "Location",
        "id": id,
        "meta": {"profile": [kind.profile("Location")]},
        "identifier": organization["identifier"].clone(),
        "status": if closed { "inactive" } else { "active" },
        "name": name,
        "mode": "instance",
        "type": std::iter::once(mcsd_type).chain(location_types).collect::<Vec<_>>(),
        "managingOrganization": {"reference": format!("Organization/{id}")},
    });
    if !alias.is_empty() {
        organization["alias"] = json!(alias);
        location["alias"] = json!(alias);
    }
    if let Kind::Jurisdiction = kind {
        location["physicalType"] = json!({"coding": [{"system": PHYSICAL_TYPES, "code": "jdn", "display": "Jurisdiction"}]});
    }
    if let Some(parent) = &unit.parent {
        let parent_id = cfg.id(parent);
        organization["partOf"] = json!({"reference": format!("Organization/{parent_id}")});
        location["partOf"] = json!({"reference": format!("Location/{parent_id}")});
    }
    if let Some(geometry) = raw.get("geometry").filter(|g| !g.is_null()) {
        match place_geometry(geometry) {
            Ok(Shape::Point(position)) => location["position"] = position,
            Ok(Shape::Boundary(extension)) => location["extension"] = json!([extension]),
            Err(message) => out.error(
                RecordError::error(Some(&unit.uid), &format!("{at}.geometry"), message).warning(),
            ),
        }
    }
    (organization, location)
}

/// Organization.type and Location.type codings from the unit's groups.
fn group_types(raw: &Value, cfg: &Config) -> (Vec<Value>, Vec<Value>) {
    let mut organization = Vec::new();
    let mut location = Vec::new();
    for group in fields::array(raw, "organisationUnitGroups").unwrap_or_default() {
        let Some(types) =
            fields::text(group, &["id"]).and_then(|uid| cfg.org_units.groups.get(&uid))
        else {
            continue;
        };
        if let Some(coding) = &types.organization_type {
            organization.push(coding.concept());
        }
        if let Some(coding) = &types.location_type {
            location.push(coding.concept());
        }
    }
    (organization, location)
}

/// What a GeoJSON geometry becomes on the Location.
enum Shape {
    Point(Value),
    Boundary(Value),
}

/// A Point becomes `position`; a Polygon or MultiPolygon the boundary
/// extension with the geometry as base64 GeoJSON.
fn place_geometry(geometry: &Value) -> Result<Shape, String> {
    let kind = geometry
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let coordinates = geometry
        .get("coordinates")
        .ok_or("geometry without coordinates")?;
    match kind {
        "Point" => {
            let pair = coordinates
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            match pair {
                [longitude, latitude, ..]
                    if longitude
                        .as_f64()
                        .is_some_and(|x| (-180.0..=180.0).contains(&x))
                        && latitude
                            .as_f64()
                            .is_some_and(|y| (-90.0..=90.0).contains(&y)) =>
                {
                    Ok(Shape::Point(
                        json!({"longitude": longitude, "latitude": latitude}),
                    ))
                }
                _ => Err(
                    "Point coordinates are not [longitude, latitude] within range; no position"
                        .into(),
                ),
            }
        }
        "Polygon" | "MultiPolygon" => {
            let depth = if kind == "Polygon" { 3 } else { 4 };
            if !nested_positions(coordinates, depth) {
                return Err(format!("{kind} coordinates are malformed; no boundary"));
            }
            let geojson = json!({"type": kind, "coordinates": coordinates}).to_string();
            let data = base64::engine::general_purpose::STANDARD.encode(geojson.as_bytes());
            Ok(Shape::Boundary(json!({
                "url": BOUNDARY,
                "valueAttachment": {"contentType": "application/geo+json", "data": data},
            })))
        }
        other => Err(format!(
            "geometry type {other:?} is neither Point, Polygon nor MultiPolygon; left out"
        )),
    }
}

/// Whether `value` is arrays nested `depth` deep ending in number pairs.
fn nested_positions(value: &Value, depth: usize) -> bool {
    let Some(items) = value.as_array() else {
        return false;
    };
    if depth == 1 {
        return items.len() >= 2 && items.iter().all(Value::is_number);
    }
    !items.is_empty() && items.iter().all(|item| nested_positions(item, depth - 1))
}
