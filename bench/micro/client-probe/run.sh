#!/usr/bin/env bash
# Measures node-rdkafka (librdkafka in Node) producing and consuming the records that
# dist/bench/micro/kafka-clients.js measures with kafkajs, on the same mock broker. Not part of Verdict:
# node-rdkafka is not a dependency. It is installed into a scratch directory and built with node-gyp
# against Debian's librdkafka (librdkafka-dev, which the Kafka tests install), as npm 11 does not run
# install scripts of packages it has not been told to trust.
# Run from the project root after `npm run build`: bench/micro/client-probe/run.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
scratch="${RDKAFKA_DIR:-/tmp/verdict-rdkafka-probe}"
mkdir -p "$scratch"
if [ ! -f "$scratch/node_modules/node-rdkafka/build/Release/node-librdkafka.node" ]; then
  (cd "$scratch" && { [ -f package.json ] || echo '{"name":"rdkafka-probe","private":true}' > package.json; } \
    && npm install --no-audit --no-fund node-rdkafka@3.6.1)
  gyp="$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
  (cd "$scratch/node_modules/node-rdkafka" && BUILD_LIBRDKAFKA=0 node "$gyp" rebuild --nodedir=/usr)
fi
RDKAFKA_DIR="$scratch" node "$root/bench/micro/client-probe/measure.mjs"
