#!/usr/bin/env bash
# The fresh-machine install, offline: clones this repository's committed HEAD into a temporary directory,
# drops any `onnxruntime-node-install` key from the clone's .npmrc (the install must not depend on it: npm 11
# warns that it is unknown, npm 12 will ignore it), and runs `ONNXRUNTIME_NODE_INSTALL=skip npm ci --offline`
# from the npm cache an earlier `npm ci` filled. Then proves:
#   - the install exited 0 and onnxruntime-node loads and runs a shipped model (CPU binaries from the package);
#   - no CUDA provider library was fetched into onnxruntime-node/bin/napi-v6/linux/x64;
#   - no download was even attempted: onnxruntime-node's install script goes through global-agent, which is
#     pointed at a dead proxy here, so any attempt would fail the install. A control run of the same script
#     without the variable must fail that way, or the check proves nothing;
#   - the optional librdkafka producer (@confluentinc/kafka-javascript) did not stop the install: without
#     CKJS_LINKING=dynamic its script downloads a prebuilt binary or the libraries it builds against, which
#     fails here (every proxy variable points at the same dead port), so npm drops it and goes on.
# Needs git and the npm cache; no network. Prints one line per step and the seconds each took.
# Usage: scripts/check-offline-install.sh [repository dir, default this one]
set -euo pipefail

repo=$(cd "${1:-$(dirname "$0")/..}" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/verdict-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
clone="$tmp/verdict"

# Nothing below may reach the internet: a download by onnxruntime-node's script would go to this closed port,
# and so would @confluentinc/kafka-javascript's (node-pre-gyp reads http_proxy; curl and wget https_proxy).
export GLOBAL_AGENT_HTTP_PROXY=http://127.0.0.1:9
export GLOBAL_AGENT_HTTPS_PROXY=http://127.0.0.1:9
export http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9
# The caller's own settings must not help (or hinder) the check. Under `npm test` npm exports its config and
# package as npm_* variables; onnxruntime-node's script reads npm_config_local_prefix and npm_package_json to
# skip a "local install", which would make the control below pass for the wrong reason. So every npm_*
# variable goes, and the check runs as it would from a plain shell.
unset ONNXRUNTIME_NODE_INSTALL ONNXRUNTIME_NODE_INSTALL_CUDA CKJS_LINKING
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep -i '^npm_')

step() { echo "check-offline-install: $*"; }
started=$SECONDS

git clone --quiet --no-hardlinks "$repo" "$clone"
step "cloned $(git -C "$clone" rev-parse --short HEAD) in $((SECONDS - started)) s"
if [[ -f "$clone/.npmrc" ]]; then sed -i '/^[[:space:]]*onnxruntime-node-install/d' "$clone/.npmrc"; fi

t=$SECONDS
(cd "$clone" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --offline --no-audit --no-fund --loglevel=error >"$tmp/npm-ci.log" 2>&1) || {
  cat "$tmp/npm-ci.log" >&2
  step "FAIL: ONNXRUNTIME_NODE_INSTALL=skip npm ci --offline failed (is the npm cache filled by an earlier npm ci?)" >&2
  exit 1
}
step "npm ci --offline exited 0 in $((SECONDS - t)) s"

if [[ -e "$clone/node_modules/@confluentinc/kafka-javascript" ]]; then
  step "FAIL: @confluentinc/kafka-javascript was installed offline without CKJS_LINKING: its install script reached a network" >&2
  exit 1
fi
step "the optional librdkafka producer did not build offline without CKJS_LINKING, and npm ci went on without it"

bin="$clone/node_modules/onnxruntime-node/bin/napi-v6/linux/x64"
if compgen -G "$bin/libonnxruntime_providers_*" >/dev/null; then
  step "FAIL: CUDA provider libraries were installed: $(ls "$bin")" >&2
  exit 1
fi
step "no CUDA provider in onnxruntime-node's binaries ($(ls "$bin" | tr '\n' ' '))"

(cd "$clone" && node --input-type=module -e "
  const ort = (await import('onnxruntime-node')).default;
  const session = await ort.InferenceSession.create('models/registry/fraud_gbt/1/model.onnx');
  console.log('check-offline-install: onnxruntime-node loads; fraud_gbt@1 inputs ' + session.inputNames.join(','));
  await session.release();
")

# The control: the same install script without the variable tries NuGet, through the dead proxy, and fails.
t=$SECONDS
if (cd "$clone/node_modules/onnxruntime-node" && node script/install.js >"$tmp/control.log" 2>&1); then
  cat "$tmp/control.log" >&2
  step "FAIL: control: the install script without ONNXRUNTIME_NODE_INSTALL did not fail offline, so the check above proves nothing" >&2
  exit 1
fi
grep -q 'nuget\|Nuget\|NuGet\|ECONNREFUSED' "$tmp/control.log" || { cat "$tmp/control.log" >&2; step "FAIL: control failed for another reason" >&2; exit 1; }
step "control: without the variable the install script tries NuGet and fails offline ($((SECONDS - t)) s): $(grep -m1 -o 'Failed to [^.]*\|ECONNREFUSED[^ ]*' "$tmp/control.log")"
step "ok in $((SECONDS - started)) s"
