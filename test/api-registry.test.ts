/**
 * `new Verdict({ registry })`: executeModel on a registry directory written by `verdict models register`,
 * with no pipeline file at all; one row, a batch, typed errors and the call's timeout.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ConfigError, ModelInputError, ModelNotFoundError, ModelOutputError, ModelTimeoutError, Verdict, type RowInputs,
} from '../index.js';
import { packageRoot } from '../core/paths.js';
import { FakeRunner } from './helpers/fake-runner.js';

const cli = resolve(packageRoot, 'dist/cli/main.js');
// p = a / (a + b) in float32: exact for the values below, NaN for 0/0.
const ratioOnnx = resolve(packageRoot, 'test/fixtures/types/registry/ratio/1/model.onnx');
// A pipeline file that does not exist: executeModel must never read (let alone compile) one.
const noPipeline = join(tmpdir(), 'verdict-no-such-pipeline.yaml');

describe('Verdict({ registry }) on a freshly registered directory', () => {
  let dir = '';
  let verdict: Verdict;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'verdict-api-registry-'));
    const r = spawnSync(process.execPath, [cli, 'models', 'register', 'ratio', ratioOnnx, '--registry', dir, '--alias', 'production'], {
      encoding: 'utf8', timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /registered ratio@1 as production/);
    verdict = new Verdict({ registry: dir, pipeline: noPipeline });
  });
  after(async () => {
    await verdict.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('one row resolves with that row\'s outputs, by name, version and alias', async () => {
    assert.deepEqual(await verdict.executeModel('ratio', { a: new Float32Array([1]), b: new Float32Array([3]) }), { p: 0.25 });
    assert.deepEqual(await verdict.executeModel('ratio@1', { a: [3], b: [1] }), { p: 0.75 });
    assert.deepEqual(await verdict.executeModel('ratio@production', { a: [1], b: [1] }), { p: 0.5 });
  });

  test('a batch resolves with one output per row, in order', async () => {
    const rows = [[1, 3], [1, 1], [3, 1], [1, 7]].map(([a, b]) => ({ a: new Float32Array([a!]), b: new Float32Array([b!]) }));
    const r = await verdict.executeModel('ratio', rows);
    assert.deepEqual(r.outputs, [{ p: 0.25 }, { p: 0.5 }, { p: 0.75 }, { p: 0.125 }]);
    assert.deepEqual(r.errors, [undefined, undefined, undefined, undefined]);
    assert.deepEqual(Object.keys(r).sort(), ['errors', 'outputs'], 'only the results: none of the actor\'s own state (rows, resolver, withdrawal)');
    assert.ok(!('rows' in r));
  });

  test('a bad row in a batch gets its own typed error; its neighbours keep their outputs', async () => {
    const r = await verdict.executeModel('ratio', [{ a: [1], b: [3] }, { a: [1, 2], b: [1] }, { a: [0], b: [0] }, { a: [3], b: [1] }]);
    assert.deepEqual(r.outputs, [{ p: 0.25 }, undefined, undefined, { p: 0.75 }]);
    assert.deepEqual(r.errors.map((e) => e?.code), [undefined, ModelInputError.code, ModelOutputError.code, undefined]);
  });

  test('an empty batch resolves with no rows', async () => {
    assert.deepEqual(await verdict.executeModel('ratio', []), { outputs: [], errors: [] });
  });

  test('a single bad row rejects with its typed error', async () => {
    await assert.rejects(verdict.executeModel('ratio', { a: [1, 2], b: [1] }), { code: ModelInputError.code });
    await assert.rejects(verdict.executeModel('ratio', { a: [1] }), { code: ModelInputError.code });
    await assert.rejects(verdict.executeModel('ratio', null as unknown as RowInputs), { code: ModelInputError.code });
  });

  test(`an unknown model, version or alias rejects with ${ModelNotFoundError.code}`, async () => {
    await assert.rejects(verdict.executeModel('fraud_gbt', { features: new Float32Array(16) }), { code: ModelNotFoundError.code });
    await assert.rejects(verdict.executeModel('ratio@2', { a: [1], b: [1] }), { code: ModelNotFoundError.code });
    await assert.rejects(verdict.executeModel('ratio@canary', [{ a: [1], b: [1] }]), { code: ModelNotFoundError.code });
  });

  test(`an invalid timeoutMs rejects with ${ConfigError.code}`, async () => {
    await assert.rejects(verdict.executeModel('ratio', { a: [1], b: [1] }, { timeoutMs: 0 }), { code: ConfigError.code });
    assert.throws(() => new Verdict({ registry: dir, timeoutMs: Number.NaN }), { code: ConfigError.code });
  });
});

describe('executeModel timeout', { timeout: 20_000 }, () => {
  let dir = '';
  const runner = new FakeRunner();
  let verdict: Verdict;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'verdict-api-timeout-'));
    const r = spawnSync(process.execPath, [cli, 'models', 'register', 'ratio', ratioOnnx, '--registry', dir], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    runner.hold = true; // every batch (the warm-up included) hangs until released: a hung worker
    verdict = new Verdict({ registry: dir, runner, timeoutMs: 40 });
  });
  after(async () => {
    runner.hold = false;
    for (const release of runner.held.splice(0)) release();
    await verdict.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test(`a hung runner rejects one row with ${ModelTimeoutError.code} after the instance's timeoutMs`, async () => {
    const started = performance.now();
    await assert.rejects(verdict.executeModel('ratio', { a: [1], b: [3] }), (err: Error & { code?: string; details?: Record<string, unknown> }) => {
      assert.equal(err.code, ModelTimeoutError.code);
      assert.deepEqual(err.details, { model: 'ratio', timeoutMs: 40 });
      return true;
    });
    assert.ok(performance.now() - started >= 39, 'not before the timeout');
  });

  test(`the call's timeoutMs overrides the instance's, for a batch too`, async () => {
    await assert.rejects(verdict.executeModel('ratio', [{ a: [1], b: [3] }, { a: [1], b: [1] }], { timeoutMs: 15 }), (err: Error & { code?: string; details?: Record<string, unknown> }) => {
      assert.equal(err.code, ModelTimeoutError.code);
      assert.equal(err.details?.['timeoutMs'], 15);
      return true;
    });
  });
});

describe('Verdict({ registry }) on a directory that does not exist', () => {
  test('MODEL_NOT_FOUND says the registry cannot be read, not that it holds no models', async () => {
    const verdict = new Verdict({ registry: join(tmpdir(), 'verdict-no-such-registry', 'nested') });
    try {
      await assert.rejects(verdict.executeModel('ratio', { a: [1], b: [1] }), (err: unknown) =>
        err instanceof ModelNotFoundError && err.code === ModelNotFoundError.code && /which cannot be read \(missing\?\)/.test(err.message));
    } finally {
      await verdict.close();
    }
  });
});
