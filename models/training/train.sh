#!/usr/bin/env bash
# Rebuilds the sample models end to end: compile the TypeScript, export the data through the pipeline's own
# feature mapper, train and write the registry and parity fixtures, then replay the held-out set through
# onnxruntime-node. Usage: models/training/train.sh [data-dir]   (default /tmp/verdict-train)
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA="${1:-/tmp/verdict-train}"
# Debian's interpreter has torch, scikit-learn and onnx; a virtualenv's python usually does not.
PYTHON="${PYTHON:-/usr/bin/python3}"

npx tsc -p tsconfig.json
node dist/scripts/export-training-data.js "$DATA"
"$PYTHON" models/training/train.py --data "$DATA" --registry models/registry --fixtures test/fixtures/parity
node models/training/check_parity.mjs --data "$DATA" --registry models/registry
