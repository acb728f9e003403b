#!/usr/bin/env bash
# Installs what is missing (test dependencies and Debian chromium included), then runs every test.
set -euo pipefail
cd "$(dirname "$0")"
./install.sh test
exec .venv/bin/python -m pytest "${@:-tests}"
