"""`make audit`: pip-audit over both hash-pinned locks, saying plainly when it could not audit.

pip-audit asks PyPI's JSON API (per release) about each pinned package. Where that service is
out of reach — as on machines that see PyPI only through a package mirror — every package
comes back "could not be audited"; that is reported as NOT AUDITED (exit 2), never as clean.
Exit 1 means known vulnerabilities were found.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = (ROOT / "template/requirements.txt", ROOT / "tests/requirements.txt")
PIP_AUDIT = Path(sys.executable).parent / "pip-audit"


def audit(lock: Path) -> int:
    command = [
        str(PIP_AUDIT),
        "-r",
        str(lock),
        "--require-hashes",
        "--disable-pip",
        "--progress-spinner",
        "off",
        "-f",
        "json",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        print(f"{lock.relative_to(ROOT)}: NOT AUDITED, pip-audit failed: {result.stderr.strip().splitlines()[-1:]}")
        return 2
    dependencies = report.get("dependencies", [])
    audited = [dependency for dependency in dependencies if "skip_reason" not in dependency]
    vulnerable = [dependency for dependency in audited if dependency.get("vulns")]
    name = lock.relative_to(ROOT)
    if not audited:
        print(
            f"{name}: NOT AUDITED: the vulnerability service answered for none of {len(dependencies)} packages "
            "from this machine; run `make audit` where https://pypi.org/pypi/<name>/<version>/json is reachable"
        )
        return 2
    for dependency in vulnerable:
        ids = ", ".join(vuln["id"] for vuln in dependency["vulns"])
        print(f"{name}: {dependency['name']} {dependency['version']}: {ids}")
    skipped = len(dependencies) - len(audited)
    print(f"{name}: {len(audited)} packages audited, {len(vulnerable)} vulnerable, {skipped} not audited")
    return 1 if vulnerable else 0


def main() -> int:
    return max(audit(lock) for lock in LOCKS)


if __name__ == "__main__":
    sys.exit(main())
