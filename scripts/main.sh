#!/usr/bin/env bash
# Set up .venv and run the main job on the embedded default. The outputs of an earlier main
# job in runs/main are replaced (--overwrite) once the new ones are complete.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m fairmt_opt.cli main --overwrite "$@"
