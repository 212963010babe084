#!/usr/bin/env bash
# First command of the README: set up this machine, then run the demo on the embedded default
# (local object store, SQLite index, in-process queue) and serve the API at http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/sohoa demo "$@"
