//! One audited request: its interaction (AuditEvent `action` and
//! restful-interaction `subtype`) from the route, its outcome from the HTTP
//! status, and [`Pending`], which the HTTP layer fills while it handles the
//! request and hands to the recorder at the end.

use super::entity::{EntityRef, Touched};
use crate::auth::Principal;
use crate::service::FhirRequest;
use crate::service::route::{HistoryKind, Route, SearchScope};
use crate::store::TenantCtx;
use actix_web::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::net::IpAddr;
use std::sync::Arc;

/// AuditEvent.action (valueset-audit-event-action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Read,
    Update,
    Delete,
    /// Searches, batches, transactions and operations.
    Execute,
}

impl Action {
    pub fn code(self) -> &'static str {
        match self {
            Action::Create => "C",
            Action::Read => "R",
            Action::Update => "U",
            Action::Delete => "D",
            Action::Execute => "E",
        }
    }
}

/// The FHIR interaction a request performed, as audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    pub action: Action,
    /// The restful-interaction code: `read`, `search-type`, `create`, ...
    pub subtype: &'static str,
    /// The operation, for subtype `operation` (`$validate`, `$reindex`).
    pub operation: Option<&'static str>,
    /// `Type/id` when the URL names one resource (audited even when the
    /// request fails, e.g. a read of an unknown id).
    pub target: Option<String>,
}

impl Interaction {
    fn new(action: Action, subtype: &'static str) -> Interaction {
        Interaction {
            action,
            subtype,
            operation: None,
            target: None,
        }
    }

    fn at(mut self, t: &fhir::ResourceType, id: &fhir::Id) -> Interaction {
        self.target = Some(format!("{t}/{id}"));
        self
    }

    /// `POST /auth/login` (BALP's user authentication).
    pub fn login() -> Interaction {
        Interaction::new(Action::Execute, "login")
    }

    fn operation(name: &'static str) -> Interaction {
        Interaction {
            operation: Some(name),
            ..Interaction::new(Action::Execute, "operation")
        }
    }

    /// The interaction of a request, or `None` when it is not audited
    /// (the CapabilityStatement: public, and about no one's data). A path
    /// the router refuses is audited by its method.
    pub fn of_request(req: &FhirRequest) -> Option<Interaction> {
        let has_query = !req.params.is_empty();
        let mut interaction = Interaction::of_path(&req.method, &req.path, has_query)?;
        if interaction.subtype == "transaction" && is_batch(req) {
            interaction.subtype = "batch";
        }
        Some(interaction)
    }

    /// The interaction of a method on a path relative to the FHIR base,
    /// before the request is read (HEAD is a GET).
    pub fn of_path(method: &Method, path: &str, has_query: bool) -> Option<Interaction> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        match Route::parse(method, path, has_query) {
            Ok(route) => Interaction::of_route(&route),
            Err(_) => Some(Interaction::of_method(method)),
        }
    }

    pub fn of_route(route: &Route) -> Option<Interaction> {
        use Action::{Create, Delete, Execute, Read, Update};
        let on = Interaction::new;
        Some(match route {
            Route::Capabilities => return None,
            Route::Transaction => on(Execute, "transaction"),
            Route::History(HistoryKind::System) => on(Read, "history-system"),
            Route::History(HistoryKind::Type(_)) => on(Read, "history-type"),
            Route::History(HistoryKind::Instance(t, id)) => on(Read, "history-instance").at(t, id),
            Route::Search(SearchScope::Type(_)) => on(Execute, "search-type"),
            Route::Search(SearchScope::System) => on(Execute, "search-system"),
            Route::Search(SearchScope::Compartment {
                compartment, id, ..
            }) => on(Execute, "search").at(compartment, id),
            Route::Create(_) => on(Create, "create"),
            Route::ConditionalUpdate(_) => on(Update, "update"),
            Route::ConditionalDelete(_) => on(Delete, "delete"),
            Route::ConditionalPatch(_) => on(Update, "patch"),
            Route::Read(t, id) => on(Read, "read").at(t, id),
            Route::Vread(t, id, _) => on(Read, "vread").at(t, id),
            Route::Update(t, id) => on(Update, "update").at(t, id),
            Route::Delete(t, id) => on(Delete, "delete").at(t, id),
            Route::Patch(t, id) => on(Update, "patch").at(t, id),
            Route::Validate(t, Some(id)) => Interaction::operation("$validate").at(t, id),
            Route::Validate(_, None) => Interaction::operation("$validate"),
            Route::Reindex(_) | Route::ReindexStatus(_) => Interaction::operation("$reindex"),
            Route::Terminology(op, t, Some(id)) => Interaction::operation(op.name()).at(t, id),
            Route::Terminology(op, _, None) => Interaction::operation(op.name()),
            Route::ExportStatus(_) => Interaction::operation("$export-status"),
            Route::ExportFile(..) => Interaction::operation("$export-file"),
            Route::ImportStatus(_) => Interaction::operation("$import-status"),
            Route::ImportErrors(..) => Interaction::operation("$import-errors"),
            Route::View(view) => Interaction::of_view(view),
            Route::Operation(invocation) => match &invocation.target {
                crate::service::operations::Target::Instance(t, id) => {
                    Interaction::operation(invocation.name()).at(t, id)
                }
                _ => Interaction::operation(invocation.name()),
            },
        })
    }

    /// SQL-on-FHIR ViewDefinitions: stored like resources, run and
    /// materialized like operations.
    fn of_view(view: &crate::service::route::ViewRoute) -> Interaction {
        use crate::service::route::ViewRoute;
        let target = |id: &fhir::Id| Some(format!("ViewDefinition/{id}"));
        let (interaction, id) = match view {
            ViewRoute::List => (Interaction::new(Action::Execute, "search-type"), None),
            ViewRoute::Read(id) => (Interaction::new(Action::Read, "read"), Some(id)),
            ViewRoute::Store(id) => (Interaction::new(Action::Update, "update"), Some(id)),
            ViewRoute::Delete(id) => (Interaction::new(Action::Delete, "delete"), Some(id)),
            ViewRoute::Run(id) => (Interaction::operation("$run"), id.as_ref()),
            ViewRoute::Materialize(id) => (Interaction::operation("$materialize"), Some(id)),
        };
        Interaction {
            target: id.and_then(target),
            ..interaction
        }
    }

    /// For a request the router could not place (unknown type, malformed
    /// id, method not allowed).
    fn of_method(method: &Method) -> Interaction {
        match method.as_str() {
            "GET" | "HEAD" => Interaction::new(Action::Read, "read"),
            "POST" => Interaction::new(Action::Create, "create"),
            "PUT" => Interaction::new(Action::Update, "update"),
            "PATCH" => Interaction::new(Action::Update, "patch"),
            "DELETE" => Interaction::new(Action::Delete, "delete"),
            _ => Interaction::new(Action::Execute, "operation"),
        }
    }
}

/// Whether a POST to the base carries a batch (not a transaction) Bundle.
fn is_batch(req: &FhirRequest) -> bool {
    matches!(&req.body, crate::service::Body::Resource(bundle)
        if bundle.get("type").and_then(Value::as_str) == Some("batch"))
}

/// AuditEvent.outcome for an HTTP status: 0 success, 4 minor failure (a
/// client error, including every refusal), 8 serious failure (a fault of
/// ours), 12 major failure (the service is unavailable).
pub fn outcome_code(status: u16) -> i16 {
    match status {
        s if s < 400 => 0,
        503 => 12,
        s if s < 500 => 4,
        _ => 8,
    }
}

/// One audit event, ready for the writer.
#[derive(Debug, Clone)]
pub struct Event {
    /// When the request arrived and when its response was ready.
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    pub tenant: String,
    /// The verified caller; `None` with authentication off, or when the
    /// request was refused before its token was verified.
    pub caller: Option<Arc<Principal>>,
    /// The username a login attempt named (never its password).
    pub user: Option<String>,
    /// The client's network address (the TCP peer).
    pub source: Option<IpAddr>,
    pub interaction: Interaction,
    pub status: u16,
    /// The search parameters, form-encoded (searches only).
    pub query: Option<String>,
    pub entities: Vec<EntityRef>,
    pub patients: Vec<String>,
}

impl Event {
    /// `update` that created the resource is audited as a creation.
    pub fn action(&self) -> Action {
        if self.interaction.subtype == "update" && self.status == 201 {
            Action::Create
        } else {
            self.interaction.action
        }
    }

    pub fn outcome(&self) -> i16 {
        outcome_code(self.status)
    }
}

/// Query parameters never recorded: a client may put a token in the URL.
const UNRECORDED_PARAMS: &[&str] = &["access_token", "code", "client_secret", "password"];

/// The audit record of one request in flight. The HTTP layer starts it
/// when the request arrives and fills in what it learns; whatever happens,
/// the recorder turns it into events when the response is ready. Anything
/// that refuses a request (authentication, tenant routing) should set what
/// it knows first ([`Pending::tenant`], [`Pending::caller`]).
#[derive(Debug)]
pub struct Pending {
    started: DateTime<Utc>,
    method: Method,
    source: Option<IpAddr>,
    tenant: Option<String>,
    caller: Option<Arc<Principal>>,
    user: Option<String>,
    /// `Some(None)` once the request is known not to be audited.
    interaction: Option<Option<Interaction>>,
    query: Option<String>,
    touched: Touched,
}

impl Pending {
    pub fn begin(method: &Method, source: Option<IpAddr>) -> Pending {
        Pending {
            started: Utc::now(),
            method: method.clone(),
            source,
            tenant: None,
            caller: None,
            user: None,
            interaction: None,
            query: None,
            touched: Touched::default(),
        }
    }

    /// A login attempt for `user` (the username it named, if any).
    pub fn login(source: Option<IpAddr>, user: Option<String>) -> Pending {
        Pending {
            user,
            interaction: Some(Some(Interaction::login())),
            ..Pending::begin(&Method::POST, source)
        }
    }

    /// A request to the admin API (`/admin/groups/...`): an operation
    /// `$admin-groups` on `target` (e.g. `group/ward-nurses`), its action
    /// from the method (a group change is audited like a resource change).
    pub fn admin(method: &Method, source: Option<IpAddr>, target: String) -> Pending {
        Pending::api(method, source, "$admin-groups", target)
    }

    /// A request to an API outside FHIR (`/admin`, `/ingest`, the console's views): audited as
    /// the operation `operation` on `target`, its action from the method.
    pub fn api(
        method: &Method,
        source: Option<IpAddr>,
        operation: &'static str,
        target: String,
    ) -> Pending {
        let action = Interaction::of_method(method).action;
        let interaction = Interaction {
            action,
            target: Some(target),
            ..Interaction::operation(operation)
        };
        Pending {
            interaction: Some(Some(interaction)),
            ..Pending::begin(method, source)
        }
    }

    /// Records the interaction the URL names, before the request is read
    /// or its caller known (so that a refused attempt names its target).
    pub fn path(&mut self, path: &str, has_query: bool) {
        self.interaction = Some(Interaction::of_path(&self.method, path, has_query));
    }

    /// Records the interaction (and, for a search, its parameters).
    pub fn request(&mut self, req: &FhirRequest) {
        let interaction = match self.interaction.take() {
            // Known from the URL already: only a batch is told apart by
            // its body.
            Some(known) => known.map(|mut i| {
                if i.subtype == "transaction" && is_batch(req) {
                    i.subtype = "batch";
                }
                i
            }),
            None => Interaction::of_request(req),
        };
        // Searches, and the bulk reads and erasures whose parameters say
        // what was handed out or removed.
        let records_query = |i: &Interaction| {
            i.subtype.starts_with("search")
                || matches!(
                    i.operation,
                    Some("$export" | "$everything" | "$expunge" | "$run")
                )
        };
        if interaction.as_ref().is_some_and(records_query) {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            for (name, value) in &req.params {
                if !UNRECORDED_PARAMS.contains(&name.as_str()) {
                    query.append_pair(name, value);
                }
            }
            self.query = Some(query.finish());
        }
        self.interaction = Some(interaction);
    }

    /// Records the tenant and the caller of the request's context.
    pub fn context(&mut self, ctx: &TenantCtx) {
        self.tenant(&ctx.tenant);
        self.caller(ctx.caller.clone());
    }

    pub fn tenant(&mut self, tenant: &str) {
        self.tenant = Some(tenant.to_owned());
    }

    pub fn caller(&mut self, caller: Option<Arc<Principal>>) {
        self.caller = caller;
    }

    /// Records what the service layer touched.
    pub fn touched(&mut self, touched: Touched) {
        self.touched = touched;
    }

    /// What the request contributes to the metrics (crate::metrics), once
    /// its response has `status`.
    pub fn summary(&self, status: u16) -> crate::metrics::RequestSummary {
        let interaction = self.interaction.as_ref().and_then(Option::as_ref);
        let (subtype, operation) = match interaction {
            Some(i) => (i.subtype, i.operation.unwrap_or_default()),
            None => ("other", ""),
        };
        let ok = (200..300).contains(&status);
        let is_write = |subtype: &str| matches!(subtype, "create" | "update" | "patch" | "delete");
        let written = match subtype {
            s if is_write(s) => Some(if ok { (1, 0) } else { (0, 1) }),
            "batch" => {
                let writes = self
                    .touched
                    .entries
                    .iter()
                    .filter(|e| e.interaction.as_ref().is_some_and(|i| is_write(i.subtype)));
                let (mut accepted, mut rejected) = (0, 0);
                for entry in writes {
                    if (200..300).contains(&entry.status) {
                        accepted += 1;
                    } else {
                        rejected += 1;
                    }
                }
                Some((accepted, rejected))
            }
            "transaction" => {
                let n = self.touched.entities.len().max(1) as u64;
                Some(if ok { (n, 0) } else { (0, 1) })
            }
            _ => None,
        };
        let integrator = self.caller.as_ref().and_then(|c| {
            c.integrator
                .clone()
                .or_else(|| c.client_id.clone())
                .or_else(|| Some(c.subject.clone()))
        });
        crate::metrics::RequestSummary {
            interaction: subtype,
            operation,
            tenant: self.tenant.clone(),
            integrator,
            written,
        }
    }

    /// The events to write once the response has `status`: none for an
    /// unaudited interaction, one per request, plus one per batch entry.
    pub fn into_events(self, status: StatusCode, ended: DateTime<Utc>) -> Vec<Event> {
        let interaction = match self.interaction {
            Some(None) => return Vec::new(),
            Some(Some(interaction)) => interaction,
            None => Interaction::of_method(&self.method),
        };
        let template = Event {
            started: self.started,
            ended,
            tenant: self
                .tenant
                .unwrap_or_else(|| crate::store::tenants::DEFAULT_TENANT.to_owned()),
            caller: self.caller,
            user: self.user,
            source: self.source,
            interaction: interaction.clone(),
            status: status.as_u16(),
            query: None,
            entities: Vec::new(),
            patients: Vec::new(),
        };
        let mut touched = self.touched;
        let entries = std::mem::take(&mut touched.entries);
        let mut events = Vec::with_capacity(1 + entries.len());
        for entry in entries {
            if let Some(interaction) = entry.interaction {
                events.push(event_for(
                    &template,
                    interaction,
                    entry.status,
                    entry.touched,
                ));
            }
        }
        let mut main = event_for(&template, interaction, template.status, touched);
        main.query = self.query;
        events.insert(0, main);
        events
    }
}

fn event_for(template: &Event, interaction: Interaction, status: u16, touched: Touched) -> Event {
    let mut entities = touched.entities;
    let mut patients = touched.patients;
    if let Some(target) = &interaction.target {
        if entities.is_empty() {
            entities.push(EntityRef {
                reference: target.clone(),
                version: None,
            });
        }
        if let Some(id) = target.strip_prefix("Patient/") {
            patients.push(id.to_owned());
        }
    }
    Event {
        interaction,
        status,
        entities,
        patients,
        caller: template.caller.clone(),
        user: template.user.clone(),
        tenant: template.tenant.clone(),
        query: None,
        ..*template
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(method: &str, path: &str, body_type: Option<&str>, expected: Option<(&str, &str)>) {
        let req = FhirRequest {
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            path: path.to_owned(),
            body: match body_type {
                Some(t) => crate::service::Body::Resource(serde_json::json!({"type": t})),
                None => crate::service::Body::None,
            },
            ..FhirRequest::default()
        };
        let got = Interaction::of_request(&req);
        let got = got.as_ref().map(|i| (i.action.code(), i.subtype));
        assert_eq!(got, expected, "{method} {path}");
    }

    #[test]
    fn each_interaction_has_its_action_and_subtype() {
        check("GET", "Patient/1", None, Some(("R", "read")));
        check("GET", "Patient/1/_history/2", None, Some(("R", "vread")));
        check(
            "GET",
            "Patient/1/_history",
            None,
            Some(("R", "history-instance")),
        );
        check("GET", "_history", None, Some(("R", "history-system")));
        check("GET", "Observation", None, Some(("E", "search-type")));
        check(
            "POST",
            "Observation/_search",
            None,
            Some(("E", "search-type")),
        );
        check("GET", "", None, Some(("E", "search-system")));
        check("GET", "Patient/1/Observation", None, Some(("E", "search")));
        check("POST", "Observation", None, Some(("C", "create")));
        check("PUT", "Observation/1", None, Some(("U", "update")));
        check("PATCH", "Observation/1", None, Some(("U", "patch")));
        check("DELETE", "Observation/1", None, Some(("D", "delete")));
        check("POST", "", Some("batch"), Some(("E", "batch")));
        check("POST", "", Some("transaction"), Some(("E", "transaction")));
        check("POST", "Patient/$validate", None, Some(("E", "operation")));
        check("POST", "$reindex", None, Some(("E", "operation")));
        check("GET", "AuditEvent", None, Some(("E", "search-type")));
        check("GET", "metadata", None, None);
        // Refused by the router: audited by method.
        check("GET", "Nonsense/1", None, Some(("R", "read")));
        check("DELETE", "AuditEvent/1", None, Some(("D", "delete")));
    }

    #[test]
    fn targets_name_the_resource_and_patient_even_on_failure() {
        let mut pending = Pending::begin(&Method::GET, None);
        pending.request(&FhirRequest {
            method: Method::GET,
            path: "Patient/p9".into(),
            ..FhirRequest::default()
        });
        let events = pending.into_events(StatusCode::NOT_FOUND, Utc::now());
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.entities[0].reference, "Patient/p9");
        assert_eq!(event.patients, ["p9"]);
        assert_eq!((event.outcome(), event.tenant.as_str()), (4, "default"));
    }

    #[test]
    fn updates_that_create_are_creations() {
        let mut pending = Pending::begin(&Method::PUT, None);
        pending.request(&FhirRequest {
            method: Method::PUT,
            path: "Patient/p1".into(),
            ..FhirRequest::default()
        });
        let events = pending.into_events(StatusCode::CREATED, Utc::now());
        assert_eq!(events[0].action(), Action::Create);
    }

    #[test]
    fn outcomes_follow_the_http_status() {
        for (status, outcome) in [
            (200, 0),
            (201, 0),
            (304, 0),
            (400, 4),
            (401, 4),
            (403, 4),
            (404, 4),
            (500, 8),
            (503, 12),
        ] {
            assert_eq!(outcome_code(status), outcome, "{status}");
        }
    }

    #[test]
    fn searches_record_their_parameters_but_not_tokens() {
        let mut pending = Pending::begin(&Method::GET, None);
        pending.request(&FhirRequest {
            method: Method::GET,
            path: "Observation".into(),
            params: vec![
                ("subject".into(), "Patient/1".into()),
                ("access_token".into(), "secret".into()),
            ],
            ..FhirRequest::default()
        });
        let events = pending.into_events(StatusCode::OK, Utc::now());
        assert_eq!(events[0].query.as_deref(), Some("subject=Patient%2F1"));
    }
}
