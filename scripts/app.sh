#!/usr/bin/env bash
# Run the PathViz dashboard: set up .venv on first use, then `streamlit run app.py`.
# Extra arguments go to streamlit (e.g. --server.port 8502).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
exec streamlit run app.py "$@"
