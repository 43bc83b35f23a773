"""Checks the rendered Baraza environment files against the server's own
list of settings (server/src/config/variables.rs, VARIABLES): every BARAZA_* name an
env file sets must be one the binary knows (an unknown name stops
start-up), and every setting the binary knows must be set by the app
role's templates or be named below as deliberately left out, so that a
new server setting cannot be forgotten in the deployment.

usage: check_env.py CONFIG_RS TEMPLATES_DIR RENDERED_ENV...
"""
import re
import sys
from pathlib import Path

# Settings the deployment does not set, and why.
LEFT_OUT = {
    "BARAZA_DATA_DIR": "the embedded cluster; the deployment has a db VM",
    "BARAZA_AUDIT": "off only to measure the audit's cost",
    "BARAZA_CONFIG": "the role writes environment files instead",
    "BARAZA_OIDC_CLOCK_SKEW_SECS": "the default (60 s) suits NTP-synchronised VMs",
    "BARAZA_KAFKA_SSL_CERT": "the role authenticates to Kafka with SASL SCRAM, not client certificates",
    "BARAZA_KAFKA_SSL_KEY": "the role authenticates to Kafka with SASL SCRAM, not client certificates",
}


def known(config_rs: Path) -> set[str]:
    text = config_rs.read_text()
    start = text.index("pub const VARIABLES")
    block = text[start : text.index("];", start)]
    return set(re.findall(r'"(BARAZA_[A-Z0-9_]+)"', block))


def set_in(path: Path) -> set[str]:
    return set(re.findall(r"^(BARAZA_[A-Z0-9_]+)=", path.read_text(), re.MULTILINE))


def main() -> int:
    config_rs, templates, rendered = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    names = known(config_rs)
    problems = []
    for path in map(Path, rendered):
        for name in sorted(set_in(path) - names):
            problems.append(f"{path.name} sets {name}, which baraza does not know")
    templated = set()
    for template in templates.glob("*.env.j2"):
        templated |= set_in(template)
    for name in sorted(names - templated - LEFT_OUT.keys()):
        problems.append(f"{name} is neither set by {templates}/*.env.j2 nor left out in check_env.py")
    for name in sorted(LEFT_OUT.keys() - names):
        problems.append(f"{name} is left out here but baraza no longer knows it")
    for problem in problems:
        print(problem)
    print(f"{len(names)} settings: {len(templated & names)} templated, {len(LEFT_OUT)} left out")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
