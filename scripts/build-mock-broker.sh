#!/usr/bin/env bash
# Builds the Kafka-protocol test broker (librdkafka's mock cluster behind a stdin command loop) used by
# the Kafka tests and the bench. Rebuilds only when the binary is missing or older than its source, so it is cheap to call
# before every test run. Needs librdkafka-dev and a C compiler: scripts/ensure-system-deps.sh installs them.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/mock-kafka/launcher/mock_cluster.c"
bin="$root/mock-kafka/launcher/mock-cluster"

if [[ -x "$bin" && ! "$src" -nt "$bin" ]]; then
  exit 0
fi

if [[ ! -f /usr/include/librdkafka/rdkafka_mock.h ]]; then
  echo "build-mock-broker: librdkafka-dev is missing; run scripts/ensure-system-deps.sh" >&2
  exit 1
fi

# Build to a temporary name and rename, so a concurrent caller never runs a half-written binary.
tmp="$bin.tmp.$$"
trap 'rm -f "$tmp"' EXIT
"${CC:-cc}" -O2 -Wall -Wextra -std=gnu11 -o "$tmp" "$src" -lrdkafka -pthread
mv -f "$tmp" "$bin"
echo "build-mock-broker: built ${bin#"$root"/}" >&2
