#!/usr/bin/env bash
# Removes the build leftovers of the librdkafka producer (@confluentinc/kafka-javascript, built at `npm ci`
# with CKJS_LINKING=dynamic: README "Choosing the producer") from a node_modules directory, then proves the
# package still loads from it. About 290 MB after the build (librdkafka's sources and objects, static
# archives, headers), about 20 MB after: what stays is the JavaScript, the addon (build/Release/*.node) and
# the two shared libraries it links (build/deps/librdkafka.so.1, librdkafka++.so.1), which need only
# Debian's libssl3 and zlib1g at run time.
# The Dockerfile runs it in its build stage. Fails, and says why, when the package is not there or no longer
# loads: an image built to carry the producer must not ship without it.
# Usage: scripts/prune-native-producer.sh [node_modules dir, default this repository's]
set -euo pipefail

modules=$(cd "${1:-$(dirname "$0")/../node_modules}" && pwd)
pkg="$modules/@confluentinc/kafka-javascript"
say() { echo "prune-native-producer: $*"; }

if [[ ! -f "$pkg/build/Release/confluent-kafka-javascript.node" ]]; then
  say "FAIL: $pkg/build/Release/confluent-kafka-javascript.node is missing: the package did not build at npm ci (CKJS_LINKING=dynamic and Debian's libssl-dev zlib1g-dev python3 make g++ are needed)" >&2
  exit 1
fi

before=$(du -sm "$pkg" | cut -f1)
rm -rf "$pkg/deps" "$pkg/src" "$pkg/build/Release/obj.target" "$pkg/build/Release/.deps" \
  "$pkg/build/deps/include" "$pkg/build/deps/pkgconfig" "$pkg/build/deps/librdkafka"
rm -f "$pkg"/build/deps/*.a
after=$(du -sm "$pkg" | cut -f1)

# Loaded as Verdict loads it (streams/kafka/librdkafka-binding.ts): the addon and its shared libraries resolve.
version=$(cd "$modules/.." && node --input-type=module -e "
  const m = (await import('@confluentinc/kafka-javascript')).default;
  if (typeof m.Producer !== 'function') throw new Error('no native Producer');
  console.log(m.librdkafkaVersion);
") || { say "FAIL: @confluentinc/kafka-javascript does not load after pruning" >&2; exit 1; }
say "pruned ${before} MB to ${after} MB; loads, librdkafka ${version}"
