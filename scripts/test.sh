#!/usr/bin/env bash
# Set up (venv, packages, Chromium) and run the whole test suite offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 GRADIO_ANALYTICS_ENABLED=False
.venv/bin/ruff check thinkedit tests app.py scripts
.venv/bin/ruff format --check thinkedit tests app.py scripts
.venv/bin/python -m pytest "$@"
