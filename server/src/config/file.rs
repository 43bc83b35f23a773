//! The configuration file (`BARAZA_CONFIG`): a TOML file whose keys are the
//! settings' names without the `BARAZA_` prefix, in lower case, e.g.
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! oidc_issuer = "https://id.health.example/realms/baraza"
//! oidc_audience = "baraza"
//! db_pool_size = 32
//! log = "info"
//! ```
//!
//! Environment variables override the file, so that a secret can stay out
//! of it (systemd credentials, Ansible Vault). The merged settings are
//! printed at start-up with every secret redacted ([`redacted`]).

use std::collections::BTreeMap;
use std::path::Path;

/// Settings whose values are never printed.
const SECRET_SETTINGS: &[&str] = &[
    "BARAZA_OIDC_LOGIN_CLIENT_SECRET",
    "BARAZA_METRICS_TOKEN",
    "BARAZA_DEIDENTIFY_KEY",
    "BARAZA_KAFKA_SASL_PASSWORD",
];

/// The file's settings as `(BARAZA_NAME, value)` pairs; the error names
/// the file and, for a bad entry, the key.
pub fn read(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the configuration file {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        // The parser's message names the line and column.
        e.to_string().trim().replace('\n', " ")
    })?;
    let mut out = Vec::new();
    for (key, value) in table {
        let name = format!("BARAZA_{}", key.to_uppercase());
        if key != key.to_lowercase() || key.starts_with("baraza_") || name == "BARAZA_CONFIG" {
            return Err(format!(
                "the key {key:?} is not a setting: write the variable's name without BARAZA_, in lower case"
            ));
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => return Err(format!("{key}: expected a string, an integer or a boolean")),
        };
        out.push((name, value));
    }
    Ok(out)
}

/// The file's settings (when `BARAZA_CONFIG` names one) overridden by the
/// environment's.
pub fn merged(
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<BTreeMap<String, String>, String> {
    let env: BTreeMap<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("BARAZA_"))
        .collect();
    let mut vars = BTreeMap::new();
    if let Some(path) = env.get("BARAZA_CONFIG") {
        vars.extend(read(Path::new(path))?);
    }
    vars.extend(env.into_iter().filter(|(k, _)| k != "BARAZA_CONFIG"));
    Ok(vars)
}

/// `NAME=value` lines for the start-up log: secrets as `<redacted>`, the
/// database URL without its password.
pub fn redacted(vars: &BTreeMap<String, String>) -> Vec<String> {
    vars.iter()
        .map(|(name, value)| {
            let shown = if SECRET_SETTINGS.contains(&name.as_str()) {
                "<redacted>".to_owned()
            } else if name == "BARAZA_DATABASE_URL" {
                without_password(value)
            } else {
                value.clone()
            };
            format!("{name}={shown}")
        })
        .collect()
}

/// A database URL with any password replaced, in either URL or key=value
/// form.
fn without_password(url: &str) -> String {
    if let Ok(mut parsed) = url::Url::parse(url) {
        if parsed.password().is_some() {
            let _ = parsed.set_password(Some("redacted"));
        }
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    "redacted".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        if !pairs.is_empty() {
            parsed.query_pairs_mut().clear().extend_pairs(pairs);
        }
        return parsed.to_string();
    }
    url.split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some(("password", _)) => "password=redacted".to_owned(),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_variables_and_values_text() {
        let vars = parse("listen = \"0.0.0.0:8080\"\ndb_pool_size = 32\naudit = \"on\"\n").unwrap();
        assert_eq!(
            vars,
            [
                ("BARAZA_AUDIT".to_owned(), "on".to_owned()),
                ("BARAZA_DB_POOL_SIZE".to_owned(), "32".to_owned()),
                ("BARAZA_LISTEN".to_owned(), "0.0.0.0:8080".to_owned()),
            ]
        );
    }

    #[test]
    fn bad_files_are_one_line_errors() {
        for (text, expected) in [
            ("LISTEN = \"x\"", "is not a setting"),
            ("baraza_listen = \"x\"", "is not a setting"),
            ("config = \"other.toml\"", "is not a setting"),
            ("listen = [1]", "expected a string"),
            ("listen = ", "line 1"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(expected), "{text}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let dir = std::env::temp_dir().join(format!("baraza-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("baraza.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\nlog = \"debug\"\n").unwrap();
        let env = [
            ("BARAZA_CONFIG".to_owned(), path.display().to_string()),
            ("BARAZA_LOG".to_owned(), "warn".to_owned()),
            ("HOME".to_owned(), "/root".to_owned()),
        ];
        let vars = merged(env).unwrap();
        assert_eq!(vars["BARAZA_LISTEN"], "0.0.0.0:9000");
        assert_eq!(vars["BARAZA_LOG"], "warn");
        assert!(!vars.contains_key("BARAZA_CONFIG") && !vars.contains_key("HOME"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn secrets_are_redacted() {
        let vars: BTreeMap<String, String> = [
            ("BARAZA_METRICS_TOKEN", "s3cret-token"),
            ("BARAZA_OIDC_LOGIN_CLIENT_SECRET", "s3cret-client"),
            ("BARAZA_DEIDENTIFY_KEY", "s3cret-pseudonym-key"),
            ("BARAZA_KAFKA_SASL_PASSWORD", "s3cret-kafka"),
            (
                "BARAZA_DATABASE_URL",
                "postgres://baraza:s3cret-pw@db/baraza?sslmode=verify-full",
            ),
            ("BARAZA_LISTEN", "0.0.0.0:8080"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let lines = redacted(&vars).join("\n");
        assert!(!lines.contains("s3cret"), "{lines}");
        assert!(lines.contains("BARAZA_LISTEN=0.0.0.0:8080"));
        assert!(lines.contains("postgres://baraza:redacted@db/baraza?sslmode=verify-full"));
        assert_eq!(
            without_password("host=db user=baraza password=s3cret dbname=x"),
            "host=db user=baraza password=redacted dbname=x"
        );
    }
}
