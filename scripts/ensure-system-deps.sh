#!/usr/bin/env bash
# Installs the Debian packages the test suite needs when they are missing: librdkafka-dev (the mock Kafka
# cluster the Kafka tests run against), kcat (interop tests), a C compiler (to build the mock launcher) and
# prometheus (its promtool checks the metrics exposition and the alert rules) and docker-compose (its `config`
# parses and validates the compose file for users without a Docker engine; the stack itself is not run here).
# Silent and without network access when everything is already there.
set -euo pipefail

missing=()
dpkg-query -W -f='${Status}\n' librdkafka-dev 2>/dev/null | grep -q 'install ok installed' || missing+=(librdkafka-dev)
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)

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
