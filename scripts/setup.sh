#!/usr/bin/env bash
# One-command setup: a virtual environment in .venv with policyqa and its dev tools.
# torch is installed first, pinned to the CPU build: an unpinned torch (which
# sentence-transformers would pull in) downloads the multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev]"
echo "policyqa installed in .venv — activate it with: . .venv/bin/activate"
