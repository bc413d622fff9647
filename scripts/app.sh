#!/usr/bin/env bash
# Run the PathViz dashboard: set up .venv on first use, then `streamlit run app.py`, which serves the
# pages and the slide viewer's tiles (/tiles/...) on one host and port.
# Extra arguments go to streamlit (e.g. --server.port 8502, --server.baseUrlPath pathviz behind a proxy).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
# Listen on this machine only unless told otherwise. PATHVIZ_LISTEN_ADDRESS=0.0.0.0 listens on every
# interface: every page and tile still needs a login, but passwords and session cookies then cross the
# network, so put an HTTPS reverse proxy in front (README, "Accounts and security").
ADDR="${PATHVIZ_LISTEN_ADDRESS:-127.0.0.1}"
if [ "$ADDR" != "127.0.0.1" ] && [ "$ADDR" != "localhost" ] && [ "$ADDR" != "::1" ]; then
  echo "[app] WARNING: listening on $ADDR: logins travel in clear text unless an HTTPS reverse proxy is in front." >&2
fi
echo "[app] Log in at the address below. First start: the admin's one-time password is printed here and written to \$PATHVIZ_HOME/admin-initial-password.txt." >&2
exec streamlit run app.py --server.address "$ADDR" "$@"
