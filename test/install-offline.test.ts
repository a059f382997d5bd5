/**
 * The fresh-machine install works offline without the `.npmrc` key npm 11 calls unknown: a clean clone of the
 * committed HEAD, `ONNXRUNTIME_NODE_INSTALL=skip npm ci --offline` from the npm cache the CI's own `npm ci`
 * filled, onnxruntime-node loading and running a shipped model, no CUDA provider fetched, and no download even
 * attempted (scripts/check-offline-install.sh, which also runs a control that must fail without the variable),
 * and the optional librdkafka producer, which cannot build offline without CKJS_LINKING, dropped by npm
 * without failing the install.
 * Needs git and that npm cache; no network.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { packageRoot } from '../core/paths.js';

const run = promisify(execFile);

test('a clean clone installs offline with ONNXRUNTIME_NODE_INSTALL=skip and onnxruntime-node runs a model', { timeout: 300_000 }, async () => {
  let stdout: string;
  try {
    ({ stdout } = await run('bash', [resolve(packageRoot, 'scripts/check-offline-install.sh'), packageRoot], { timeout: 280_000, maxBuffer: 16 * 1024 * 1024 }));
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    assert.fail(`check-offline-install failed:\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
  assert.match(stdout, /npm ci --offline exited 0/);
  assert.match(stdout, /the optional librdkafka producer did not build offline without CKJS_LINKING, and npm ci went on without it/);
  assert.match(stdout, /no CUDA provider in onnxruntime-node's binaries/);
  assert.match(stdout, /onnxruntime-node loads; fraud_gbt@1 inputs \w+/);
  assert.match(stdout, /control: without the variable the install script tries NuGet and fails offline/);
  assert.match(stdout, /ok in \d+ s/);
});
