"""Checks the Grafana dashboard JSON: it parses, has the fields Grafana's
provisioning needs, every panel queries the provisioned Prometheus data
source, and the panels cover what operators need. Writes every query as a
recording rule to OUT so that `promtool check rules OUT` parses the PromQL.

    python3 check_dashboard.py DASHBOARD.json OUT.yml
"""
import json
import re
import sys

path, out = sys.argv[1], sys.argv[2]
dash = json.load(open(path))
errors = []
for key in ("uid", "title", "panels", "schemaVersion"):
    if key not in dash:
        errors.append(f"dashboard has no {key}")
ids = set()
exprs = []
for panel in dash.get("panels", []):
    for key in ("id", "type", "title", "gridPos", "targets", "datasource"):
        if key not in panel:
            errors.append(f"panel {panel.get('title')!r} has no {key}")
    if panel.get("id") in ids:
        errors.append(f"panel id {panel.get('id')} repeats")
    ids.add(panel.get("id"))
    if panel.get("datasource", {}).get("uid") != "baraza-prometheus":
        errors.append(f"panel {panel.get('title')!r} does not use the provisioned data source")
    for target in panel.get("targets", []):
        if not target.get("expr"):
            errors.append(f"panel {panel.get('title')!r} has a target without expr")
        else:
            exprs.append(target["expr"])
text = " ".join(exprs)
for metric in (
    "baraza_http_requests_total",
    "baraza_http_request_duration_seconds_bucket",
    "baraza_db_pool_connections",
    "baraza_ingest_entries_total",
    "baraza_integrator_last_success_timestamp_seconds",
    "baraza_database_size_bytes",
    "baraza_audit_queue_depth",
    "baraza_backup_last_success_timestamp_seconds",
    "baraza_search_plans_total",
):
    if metric not in text:
        errors.append(f"no panel shows {metric}")
with open(out, "w") as f:
    f.write("groups:\n  - name: dashboard-queries\n    rules:\n")
    for i, expr in enumerate(exprs):
        expr = re.sub(r"\$instance", ".*", expr)
        f.write(f"      - record: dashboard:query_{i}\n        expr: {json.dumps(expr)}\n")
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"dashboard OK: {len(dash['panels'])} panels, {len(exprs)} queries")
