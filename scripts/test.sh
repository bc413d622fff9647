#!/usr/bin/env bash
# Run the PathViz test suite: set up .venv (with test tools) on first use, make sure Debian's
# chromium is present for the browser test (installed with apt-get when run as root), then pytest.
# Extra arguments go to pytest.
set -euo pipefail
export PATHVIZ_WITH_TEST_TOOLS=1
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
CHROMIUM="${PATHVIZ_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "[test] installing Debian's chromium for the browser test"
    (apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }) \
      || echo "[test] could not install chromium; the browser test will be skipped"
  else
    echo "[test] $CHROMIUM not found and not root: the browser test will be skipped (sudo apt-get install chromium)"
  fi
fi
# CI must run the browser test, never skip it.
if [ "${CI:-}" = "true" ]; then export PATHVIZ_REQUIRE_BROWSER=1; fi
exec python -m pytest -q -ra "$@"
