#!/usr/bin/env bash
# Run the PathViz dashboard: set up .venv on first use, then `streamlit run app.py`, which serves the
# pages and the slide viewer's tiles (/tiles/...) on one host and port.
# Extra arguments go to streamlit (e.g. --server.port 8502, --server.baseUrlPath pathviz behind a proxy).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
# Listen on this machine only unless told otherwise: there are no accounts yet, so anyone who can
# reach the port sees every slide. PATHVIZ_LISTEN_ADDRESS=0.0.0.0 listens on every interface.
ADDR="${PATHVIZ_LISTEN_ADDRESS:-127.0.0.1}"
if [ "$ADDR" != "127.0.0.1" ] && [ "$ADDR" != "localhost" ] && [ "$ADDR" != "::1" ]; then
  echo "[app] WARNING: listening on $ADDR: PathViz has no accounts yet; anyone who can reach this port can open every slide." >&2
fi
exec streamlit run app.py --server.address "$ADDR" "$@"
