#!/usr/bin/env bash
# The whole test suite: setup check, lint, types, unit + contract + end-to-end tests on real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/pytest -q -p no:cacheprovider "$@"
