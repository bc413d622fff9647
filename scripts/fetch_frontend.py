"""Install the viewer's JavaScript from the npm registry (run by scripts/app.sh and scripts/test.sh).

Reads assets/viewer/frontend.lock.json, downloads each pinned tarball, checks its npm ``integrity``
(SHA-512, as package-lock.json records it), and extracts the listed folder into assets/viewer/.
Needs only Python (no node/npm). Idempotent: an installed package with a matching stamp is kept.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

VIEWER = Path(__file__).resolve().parent.parent / "assets" / "viewer"


def install(pkg: dict) -> str:
    dest = VIEWER / pkg["to"]
    stamp = dest / ".installed"
    want = f"{pkg['name']}@{pkg['version']} {pkg['integrity']}"
    if stamp.exists() and stamp.read_text() == want:
        return f"{pkg['name']} {pkg['version']} already installed"
    with urllib.request.urlopen(pkg["tarball"], timeout=120) as resp:
        data = resp.read()
    algo, _, digest = pkg["integrity"].partition("-")
    actual = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if actual != digest:
        sys.exit(f"error: {pkg['tarball']} failed its integrity check ({algo} {actual} != {digest}).")
    prefix = pkg["extract"]
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.startswith(prefix) or member.name.endswith(".map"):
                continue
            rel = Path(member.name[len(prefix):])
            if rel.is_absolute() or ".." in rel.parts:
                continue
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(tar.extractfile(member).read())
    stamp.write_text(want)
    return f"{pkg['name']} {pkg['version']} installed into {dest}"


def main() -> int:
    lock = json.loads((VIEWER / "frontend.lock.json").read_text())
    for pkg in lock["packages"]:
        print(install(pkg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
