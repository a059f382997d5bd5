#!/usr/bin/env bash
# Installs the Debian packages the test suite needs when they are missing: librdkafka-dev (the mock Kafka
# cluster the Kafka tests run against), kcat (interop tests), a C compiler (to build the mock launcher) and
# prometheus (its promtool checks the metrics exposition and the alert rules) and docker-compose (its `config`
# parses and validates the compose file for users without a Docker engine; the stack itself is not run here),
# and what `CKJS_LINKING=dynamic npm ci` builds the librdkafka producer with (@confluentinc/kafka-javascript,
# an optional dependency the Kafka tests run every scenario on: README "Choosing the producer"), so the
# README's test command runs this script before `npm ci`. Silent and without network access when everything
# is already there.
set -euo pipefail

# The librdkafka producer's build, against the system's OpenSSL and zlib (the Dockerfile installs the same).
NATIVE_PRODUCER_BUILD_DEPS=(libssl-dev zlib1g-dev python3 make g++)

installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
installed librdkafka-dev || missing+=(librdkafka-dev)
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
for pkg in "${NATIVE_PRODUCER_BUILD_DEPS[@]}"; do installed "$pkg" || missing+=("$pkg"); done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo -n)
else
  echo "ensure-system-deps: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi

echo "ensure-system-deps: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
