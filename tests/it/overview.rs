//! The admin API's views for operators (issue 11, docs/console.md):
//! `/admin/{tenant}/overview` counts only its tenant and needs
//! `tenant-admin` or `audit-read`; `/admin/whoami` lists only the caller's
//! tenants; `/admin/{tenant}/permissions` is the union of groups as
//! enforced; every call is audited.

use crate::console::{call, root, seeded_server};
use reqwest::Method;
use serde_json::Value;

fn count_of(overview: &Value, resource_type: &str) -> i64 {
    overview["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == resource_type)
        .and_then(|r| r["count"].as_i64())
        .unwrap_or(0)
}

#[tokio::test]
async fn overview_counts_its_tenant_only_and_needs_admin_or_audit_rights() {
    let (provider, app) = seeded_server().await;
    let admin = provider.token("admin-client").await;
    let url = |tenant: &str, path: &str| format!("{}/admin/{tenant}/{path}", root(&app));

    let (status, acme) = call(&app, &admin, Method::GET, &url("acme", "overview"), None).await;
    assert_eq!(status, 200, "{acme}");
    // Two facilities and the location of the seeded batch.
    assert_eq!(count_of(&acme, "Location"), 3, "{acme}");
    assert_eq!(count_of(&acme, "Organization"), 1);
    assert_eq!(count_of(&acme, "Observation"), 1);
    assert_eq!(acme["hours"].as_array().map(Vec::len), Some(24));
    let writes: i64 = acme["hours"]
        .as_array()
        .expect("hours")
        .iter()
        .map(|h| h["writes"].as_i64().unwrap_or(0))
        .sum();
    // Every version written in acme: the seeded resources, the batch's,
    // and the golden records and links the MPI wrote with the Patients.
    let owner = baraza::db::connect(&crate::harness::cluster().config(&app.dbname))
        .await
        .expect("owner");
    let tx_versions: i64 = owner
        .query_one(
            "SELECT count(*) FROM resource_history WHERE tenant = 'acme'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert!(tx_versions >= 10, "{tx_versions}");
    assert_eq!(writes, tx_versions, "{acme}");
    assert!(
        acme["errors"].as_i64().unwrap_or(0) >= 1,
        "the refused read counts: {acme}"
    );
    let rate = acme["errorRate"].as_f64().expect("errorRate");
    assert!(rate > 0.0 && rate < 1.0, "{rate}");
    let writers: Vec<&str> = acme["lastSuccessfulWrites"]
        .as_array()
        .expect("writers")
        .iter()
        .filter_map(|w| w["agent"].as_str())
        .collect();
    assert!(writers.contains(&"integrator-a"), "{writers:?}");

    let (status, globex) = call(&app, &admin, Method::GET, &url("globex", "overview"), None).await;
    assert_eq!(status, 200);
    assert_eq!(count_of(&globex, "Location"), 1, "{globex}");
    assert_eq!(count_of(&globex, "Observation"), 0);
    let writers = globex["lastSuccessfulWrites"].to_string();
    assert!(!writers.contains("integrator-a"), "{writers}");

    // A clinician may not read it; a user without the tenant gets the same
    // 404 as for a tenant that does not exist.
    let alice = provider.password_token("alice", "alice-password").await;
    let (status, outcome) = call(&app, &alice, Method::GET, &url("acme", "overview"), None).await;
    assert_eq!(status, 403, "{outcome}");
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap_or_default()
            .contains("audit-read")
    );
    let (status, _) = call(&app, &alice, Method::GET, &url("globex", "overview"), None).await;
    assert_eq!(status, 404);
    // An auditor may.
    let bob = provider.password_token("bob", "bob-password").await;
    let (status, _) = call(&app, &bob, Method::GET, &url("acme", "overview"), None).await;
    assert_eq!(status, 200);

    // Without a token: 401.
    let response = app
        .client
        .get(url("acme", "overview"))
        .send()
        .await
        .expect("GET");
    let status = response.status();
    assert_eq!(status, 401, "{}", response.text().await.unwrap_or_default());
}

#[tokio::test]
async fn me_lists_the_callers_tenants_and_permissions_are_the_union_of_groups() {
    let (provider, app) = seeded_server().await;
    let admin_api = |path: &str| format!("{}/admin/{path}", root(&app));
    let alice = provider.password_token("alice", "alice-password").await;
    let (status, me) = call(&app, &alice, Method::GET, &admin_api("whoami"), None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["subject"], "alice");
    assert_eq!(me["tenants"], serde_json::json!(["acme", "default"]));
    // The default tenant's is at /admin/me, the others' under their id.
    let (status, mine) = call(&app, &alice, Method::GET, &admin_api("me"), None).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["tenant"], "default");
    let (status, mine) = call(&app, &alice, Method::GET, &admin_api("acme/me"), None).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(
        mine["rights"]["permissions"]["*"],
        serde_json::json!(["create", "read", "search", "update"])
    );

    // The union of a tenant group and a system group, as enforced.
    let carol = provider.password_token("carol", "carol-password").await;
    let (status, union) = call(
        &app,
        &carol,
        Method::GET,
        &admin_api("acme/permissions?group=ward-clerks&group=auditor"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{union}");
    assert_eq!(
        union["rights"]["permissions"]["Encounter"],
        serde_json::json!(["create", "read"])
    );
    assert_eq!(
        union["rights"]["permissions"]["AuditEvent"],
        serde_json::json!(["read", "search"])
    );
    assert_eq!(
        union["rights"]["purposes"],
        serde_json::json!(["audit-read"])
    );
    // ward-clerks is acme's: in default the same names give only auditor's.
    let (status, union) = call(
        &app,
        &carol,
        Method::GET,
        &admin_api("permissions?group=ward-clerks&group=auditor"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{union}");
    assert!(
        union["rights"]["permissions"].get("Encounter").is_none(),
        "{union}"
    );
    // Only tenant admins may ask, and a group must be named.
    let (status, _) = call(
        &app,
        &alice,
        Method::GET,
        &admin_api("acme/permissions?group=auditor"),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, outcome) = call(
        &app,
        &carol,
        Method::GET,
        &admin_api("acme/permissions"),
        None,
    )
    .await;
    assert_eq!(status, 400, "{outcome}");

    // Each of these calls on acme is one audit event of its operation,
    // refused ones included.
    let rows = crate::audit::rows_where(
        &app,
        "tenant = 'acme' AND subtype = 'operation' AND event::text LIKE '%$admin-permissions%'",
        3,
    )
    .await;
    let outcomes: Vec<i16> = rows.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == 0).count(),
        1,
        "{outcomes:?}"
    );
    assert!(rows.iter().any(|r| r.agents.contains(&"alice".to_owned())));
}

#[tokio::test]
async fn tenants_and_integrators_are_listed_for_operators_within_their_reach() {
    let (provider, app) = seeded_server().await;
    let admin_api = |path: &str| format!("{}/admin/{path}", root(&app));

    // A user sees its own tenants, with names and status, and no other.
    let alice = provider.password_token("alice", "alice-password").await;
    let (status, listed) = call(&app, &alice, Method::GET, &admin_api("tenants"), None).await;
    assert_eq!(status, 200, "{listed}");
    let ids: Vec<&str> = listed["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, ["acme", "default"], "{listed}");
    assert_eq!(listed["tenants"][1]["name"], "Default tenant");
    assert_eq!(listed["tenants"][0]["status"], "active");
    assert!(listed["tenants"][0]["createdAt"].as_str().is_some());
    let response = app
        .client
        .get(admin_api("tenants"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 401);

    // The seeded batch: one record created, one failed, by the admin client.
    let admin = provider.token("admin-client").await;
    let (status, acme) = call(
        &app,
        &admin,
        Method::GET,
        &admin_api("acme/integrators"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{acme}");
    let rows = acme["integrators"].as_array().expect("integrators");
    assert_eq!(rows.len(), 1, "{acme}");
    assert_eq!(rows[0]["batches"], 1, "{acme}");
    assert_eq!(rows[0]["openBatches"], 0);
    assert_eq!(rows[0]["records"]["received"], 2);
    assert_eq!(rows[0]["records"]["created"], 1);
    assert_eq!(rows[0]["records"]["failed"], 1);
    assert!(rows[0]["lastBatchAt"].as_str().is_some(), "{acme}");
    assert!(rows[0]["lastSuccessAt"].as_str().is_some(), "{acme}");
    // Another tenant's list is its own (empty), and a clinician may not ask.
    let (status, globex) = call(
        &app,
        &admin,
        Method::GET,
        &admin_api("globex/integrators"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{globex}");
    assert_eq!(globex["integrators"], serde_json::json!([]));
    let (status, outcome) = call(
        &app,
        &alice,
        Method::GET,
        &admin_api("acme/integrators"),
        None,
    )
    .await;
    assert_eq!(status, 403, "{outcome}");
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap_or_default()
            .contains("tenant-admin")
    );
}
