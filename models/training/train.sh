#!/usr/bin/env bash
# Rebuilds the sample models end to end: compile the TypeScript, export raw generated transactions, compute their
# state and features in Python (state_features.py), train and register new versions and parity fixtures, write the
# state parity fixture (test/fixtures/state-parity.json), then replay the held-out set through
# onnxruntime-node. Usage: models/training/train.sh [data-dir]   (default /tmp/verdict-train)
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA="${1:-/tmp/verdict-train}"
# Debian's interpreter has torch, scikit-learn and onnx; a virtualenv's python usually does not.
PYTHON="${PYTHON:-/usr/bin/python3}"

npx tsc -p tsconfig.json
node dist/scripts/export-training-data.js "$DATA"
"$PYTHON" models/training/train.py --data "$DATA" --registry models/registry --fixtures test/fixtures/parity
node dist/scripts/export-state-parity-events.js "$DATA/parity-events.jsonl"
"$PYTHON" models/training/make_state_fixture.py --events "$DATA/parity-events.jsonl" --out test/fixtures/state-parity.json
node models/training/check_parity.mjs --data "$DATA" --registry models/registry
