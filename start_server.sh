#!/usr/bin/env bash
# Installs what is missing, then serves PKC AI-ONE on http://127.0.0.1:8000 (settings: .env / AIONE_*).
set -euo pipefail
cd "$(dirname "$0")"
./install.sh
mkdir -p data
HOST="${AIONE_SERVER__HOST:-127.0.0.1}"
PORT="${AIONE_SERVER__PORT:-8000}"
echo ""
echo "  PKC AI-ONE: http://$HOST:$PORT"
echo ""
exec .venv/bin/python -m uvicorn chat:app --host "$HOST" --port "$PORT" --workers 1
