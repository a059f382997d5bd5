#!/usr/bin/env bash
# `npm test`'s second step (pretest): the librdkafka producer (@confluentinc/kafka-javascript) must load,
# because the tests run every Kafka scenario on both producers. It is an optional dependency, so a plain
# `npm ci` that could not build it (no CKJS_LINKING=dynamic, or without Debian's libssl-dev zlib1g-dev python3
# make g++) passes without it; the tests would then fail scenario by scenario on CONFIG_INVALID. This says why
# at once, and how to build it. Loads it as Verdict does (streams/kafka/librdkafka-binding.ts). No network.
set -euo pipefail
cd "$(dirname "$0")/.."

if reason=$(node --input-type=module -e "
  try {
    const m = (await import('@confluentinc/kafka-javascript')).default;
    if (typeof m.Producer !== 'function') throw new Error('it has no native Producer');
  } catch (err) {
    console.log(err.code === 'ERR_MODULE_NOT_FOUND' ? 'it is not installed' : 'it does not load: ' + err.message.split('\n')[0]);
    process.exit(1);
  }
" 2>&1); then
  exit 0
fi
cat >&2 <<MSG
check-native-producer: the librdkafka producer, @confluentinc/kafka-javascript (an optional dependency), is
needed by the tests, which run every Kafka scenario on both producers, but ${reason}.
Build it (README "Two commands" and "Choosing the producer"; as root, or with sudo):

  bash scripts/ensure-system-deps.sh && CKJS_LINKING=dynamic ONNXRUNTIME_NODE_INSTALL=skip npm ci

MSG
exit 1
