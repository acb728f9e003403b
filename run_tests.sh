#!/usr/bin/env bash
# Installs what is missing (test dependencies and Debian chromium included), then runs every test.
set -euo pipefail
cd "$(dirname "$0")"
./install.sh test
if [ "$#" -eq 0 ]; then  # the whole suite: the checkers first (settings in pyproject.toml and tests/js)
  echo "[checks] ruff" && .venv/bin/ruff check --quiet .
  echo "[checks] mypy" && .venv/bin/mypy
  echo "[checks] tsc" && tests/js/node_modules/.bin/tsc -p tests/js
fi
exec .venv/bin/python -m pytest "${@:-tests}"
