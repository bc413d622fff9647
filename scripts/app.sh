#!/usr/bin/env bash
# Run the PathViz dashboard: set up .venv on first use, then `streamlit run app.py`, which serves the
# pages and the slide viewer's tiles (/tiles/...) on one host and port.
# Extra arguments go to streamlit (e.g. --server.port 8502, --server.baseUrlPath pathviz behind a proxy).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
exec streamlit run app.py "$@"
