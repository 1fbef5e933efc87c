#!/usr/bin/env bash
# Set up if needed, then start the service on its embedded defaults (SQLite, demo taxonomy and model).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/triage serve "$@"
