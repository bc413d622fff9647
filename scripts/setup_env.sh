# Sourced by scripts/app.sh and scripts/test.sh: make .venv with the pinned stack, install
# pathviz (editable) and the viewer's JavaScript. Re-installs only when a requirements file changes.
# Needs only Python 3.11+ and pip (the registries must be reachable on first use).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "error: PathViz needs Python 3.11+, found $("$PY" --version 2>&1). Set PYTHON=/path/to/python3.11." >&2; exit 2; }
VENV="${PATHVIZ_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
REQS=(requirements.txt)
[ "${PATHVIZ_WITH_TEST_TOOLS:-0}" = "1" ] && REQS+=(requirements-test.txt)
# pip on some machines warns about configured local indexes that do not exist; hide only that line.
pipq() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; return "${PIPESTATUS[0]}"; }
STAMP="$VENV/.pathviz-installed"
WANT="$(cat "${REQS[@]}" pyproject.toml | sha256sum | cut -c1-16) ${REQS[*]}"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "[setup] installing pinned requirements (${REQS[*]}); first run downloads PyTorch (~5 GB with its CUDA libraries)"
  args=(); for r in "${REQS[@]}"; do args+=(-r "$r"); done
  pipq "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${args[@]}"
  pipq "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .
  "$VENV/bin/python" -m pip check
  echo "$WANT" > "$STAMP"
fi
"$VENV/bin/python" scripts/fetch_frontend.py
export PATH="$VENV/bin:$PATH"
