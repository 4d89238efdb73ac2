#!/usr/bin/env bash
# Set up (venv, packages, Chromium) and run the whole test suite offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 GRADIO_ANALYTICS_ENABLED=False
.venv/bin/ruff check thinkedit tests app.py scripts
.venv/bin/ruff format --check thinkedit tests app.py scripts
.venv/bin/python -m pytest "$@"
# The model tests again with the oldest transformers ThinkEdit supports (5.17, with the huggingface-hub it needs: what
# the lent GPU machines have), from two pure-Python wheels in build/. The oldest torch (2.11, ZeroGPU's newest) is not
# tested here: PyPI has only its CUDA build, which with its NVIDIA libraries is several GB to download.
OLDEST=build/oldest-transformers
[ -d "$OLDEST/transformers" ] || .venv/bin/python -m pip install --quiet --no-deps --target "$OLDEST" \
  transformers==5.17.0 huggingface-hub==1.33.0
PYTHONPATH="$OLDEST" .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_qwen_vl_thinker.py \
  tests/test_diffusers_editors.py tests/test_speed.py
