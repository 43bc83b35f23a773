//! `baraza terminology load` (issue 5): a CSV release loaded as global
//! content is visible to every tenant; a malformed release fails naming the
//! file and line and leaves the loaded content as it was; `--tenant` keeps
//! content to one tenant.

use crate::harness::{cluster, fresh_database, spawn_app_on};
use crate::processes::baraza;
use crate::terminology::{get, param};

const URL: &str = "https://health.example.go.ke/fhir/CodeSystem/facility-types";

fn load(args: &[&str], db_url: &str) -> (bool, String, String) {
    let mut all = vec!["terminology", "load", "--format", "csv"];
    all.extend_from_slice(args);
    let out = baraza(&all, &[("BARAZA_DATABASE_URL", db_url)])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn the_load_command_loads_global_or_tenant_content_and_fails_cleanly() {
    let dbname = fresh_database().await;
    let owner = baraza::db::connect(&cluster().config(&dbname))
        .await
        .unwrap();
    baraza::store::tenants::create(&owner, "county-a", "")
        .await
        .unwrap();
    let db_url = cluster().url(&dbname);
    let dir = std::env::temp_dir().join(format!("baraza-term-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let good = file(
        "good.csv",
        &format!("#url={URL}\ncode,display,parent\nH,Hospital,\nH2,Level 2 hospital,H\n"),
    );
    let (ok, stdout, stderr) = load(&[&good, "--version", "1"], &db_url);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("2 concepts") && stdout.contains("global"),
        "{stdout}"
    );
    let bad = file(
        "bad.csv",
        &format!("#url={URL}\ncode,display,parent\nH,Hospital,\nH2,Broken,H\nH3,\"unterminated\n"),
    );
    let (ok, _, stderr) = load(&[&bad, "--version", "1"], &db_url);
    assert!(!ok);
    assert!(
        stderr.contains("bad.csv") && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    let tenant_only = file(
        "tenant.csv",
        "#url=urn:county-a:codes\ncode,display\nX,Ex\n",
    );
    let (ok, _, stderr) = load(&[&tenant_only, "--tenant", "county-a"], &db_url);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = load(&[&tenant_only, "--tenant", "county-z"], &db_url);
    assert!(!ok && stderr.contains("county-z"), "{stderr}");

    let app = spawn_app_on(dbname, |_| {}).await;
    for base in ["", "county-a/"] {
        let (status, out) = get(
            &app,
            &format!("{base}CodeSystem/$lookup?system={URL}&code=H2"),
        )
        .await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(param(&out, "display"), "Level 2 hospital");
    }
    assert_eq!(
        get(
            &app,
            "county-a/CodeSystem/$lookup?system=urn:county-a:codes&code=X"
        )
        .await
        .0,
        200
    );
    assert_eq!(
        get(&app, "CodeSystem/$lookup?system=urn:county-a:codes&code=X")
            .await
            .0,
        404
    );
    let _ = std::fs::remove_dir_all(&dir);
}
