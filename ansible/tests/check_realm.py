"""Checks the Keycloak realm export against what Baraza reads: the system
groups of server/src/auth/permissions.rs, a `groups` claim without paths, a
`tenants` claim, the `baraza` audience, a public PKCE portal client, a
confidential client-credentials integrator with an `integrator` claim, an
analysts' client, and OTP for the administrative groups.

    python3 check_realm.py REALM.json PERMISSIONS.rs
"""
import json
import re
import sys

realm = json.load(open(sys.argv[1]))
rust = open(sys.argv[2]).read()
errors = []
system_groups = set(re.findall(r'system_group\(\s*"([a-z-]+)"', rust))
if len(system_groups) < 5:
    errors.append(f"could not read the system groups from {sys.argv[2]}: {system_groups}")
groups = {g["name"]: g for g in realm.get("groups", [])}
for name in sorted(system_groups - set(groups)):
    errors.append(f"system group {name} is missing from the realm")
mappers = [m for s in realm.get("clientScopes", []) for m in s.get("protocolMappers", [])]
mappers += [m for c in realm.get("clients", []) for m in c.get("protocolMappers", [])]
by_claim = {}
for m in mappers:
    cfg = m.get("config", {})
    by_claim.setdefault(cfg.get("claim.name") or cfg.get("included.custom.audience"), []).append(m)
if not any(m["protocolMapper"] == "oidc-group-membership-mapper" and m["config"].get("full.path") == "false"
           for m in by_claim.get("groups", [])):
    errors.append("no groups claim without group paths")
if not by_claim.get("tenants"):
    errors.append("no tenants claim")
if not any(m["protocolMapper"] == "oidc-audience-mapper" for m in by_claim.get("baraza", [])):
    errors.append("no audience mapper for baraza")
if not by_claim.get("integrator"):
    errors.append("no integrator claim")
if not any(m["protocolMapper"] == "oidc-sub-mapper" for m in mappers):
    errors.append("no sub mapper (Keycloak 25+ puts sub in the basic scope)")
clients = {c["clientId"]: c for c in realm.get("clients", [])}
portal = clients.get("baraza-portal", {})
if not (portal.get("publicClient") and portal.get("standardFlowEnabled")
        and portal.get("attributes", {}).get("pkce.code.challenge.method") == "S256"):
    errors.append("the portal is not a public authorization-code client with PKCE S256")
if not any(c.get("serviceAccountsEnabled") and not c.get("publicClient") for c in clients.values()):
    errors.append("no confidential client-credentials integrator")
if "baraza-analytics" not in clients:
    errors.append("no analysts' client")
scopes = {s["name"] for s in realm.get("clientScopes", [])}
for c in clients.values():
    for s in c.get("defaultClientScopes", []) + c.get("optionalClientScopes", []):
        if s not in scopes:
            errors.append(f"client {c['clientId']} names unknown scope {s}")
mfa_groups = [g for g, v in groups.items() if "mfa-required" in v.get("realmRoles", [])]
if not {"tenant-admin", "data-steward", "auditor"} <= set(mfa_groups):
    errors.append(f"administrative groups without the mfa-required role: {mfa_groups}")
if not any(a["alias"] == "CONFIGURE_TOTP" and a["enabled"] for a in realm.get("requiredActions", [])):
    errors.append("CONFIGURE_TOTP is not enabled")
for u in realm.get("users", []):
    for g in u.get("groups", []):
        if g.strip("/") not in groups:
            errors.append(f"user {u['username']} is in unknown group {g}")
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"realm OK: {len(groups)} groups, {len(clients)} clients, {len(scopes)} scopes")
