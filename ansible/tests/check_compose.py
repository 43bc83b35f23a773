"""Checks docker-compose.yml beyond its schema: every bind-mounted file
exists, every depends_on names a service, every named volume is declared;
with --placeholders, every ${KC_...} placeholder of the realm file is set
in the keycloak service.

    python3 check_compose.py docker-compose.yml
    python3 check_compose.py --placeholders docker-compose.yml REALM.json
"""
import os
import re
import sys

import yaml

args = sys.argv[1:]
placeholders = args[0] == "--placeholders"
if placeholders:
    args = args[1:]
compose_path = args[0]
base = os.path.dirname(os.path.abspath(compose_path))
doc = yaml.safe_load(open(compose_path))
services = doc["services"]
errors = []
if placeholders:
    realm = open(args[1]).read()
    env = services["keycloak"].get("environment", {})
    for name in sorted(set(re.findall(r"\$\{(KC_[A-Z0-9_]+)\}", realm))):
        if name not in env:
            errors.append(f"keycloak does not set {name}")
else:
    volumes = set((doc.get("volumes") or {}).keys())
    for name, svc in services.items():
        deps = svc.get("depends_on", [])
        for dep in (deps if isinstance(deps, list) else deps.keys()):
            if dep not in services:
                errors.append(f"{name} depends on unknown service {dep}")
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0] if isinstance(vol, str) else vol.get("source")
            if source.startswith((".", "/")):
                if not os.path.exists(os.path.join(base, source)):
                    errors.append(f"{name} mounts missing {source}")
            elif source not in volumes:
                errors.append(f"{name} uses undeclared volume {source}")
        build = svc.get("build")
        if build:
            context = build if isinstance(build, str) else build.get("context", ".")
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            if not os.path.exists(os.path.join(base, context, dockerfile)):
                errors.append(f"{name} builds from missing {dockerfile}")
if errors:
    print("\n".join(errors))
    sys.exit(1)
print("compose references OK" if not placeholders else "realm placeholders OK")
