/**
 * The model file size bound (`maxModelBytes`, default 1 GiB), checked with stat before any byte is read: at
 * register (the source file), at resolve, inspect and promote (the registry's file), in the manifest check,
 * in the session cache of the calling thread and of an inference worker thread, and when a pipeline compiles
 * (`models.maxModelBytes`). At the bound the file is accepted; one byte over it is MODEL_FILE_TOO_LARGE.
 * Real ONNX files (test/fixtures/registry) in temporary registries.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ConfigError, ModelFileTooLargeError, isVerdictError } from '../core/errors.js';
import { modelsCommand } from '../cli/models-command.js';
import { InThreadRunner } from '../models/in-thread-runner.js';
import { DEFAULT_MAX_MODEL_BYTES } from '../models/model-file.js';
import { ModelRegistry } from '../models/registry.js';
import { verifyManifestSignature } from '../models/verify-version.js';
import { PiscinaRunner } from '../runtime/workers/piscina-runner.js';
import { Engine } from '../runtime/engine.js';
import { copyRegistry } from './helpers/registry-copy.js';
import { samplePipeline, samplePipelinePath } from './helpers/pipelines.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/registry/', import.meta.url));
const LINEAR4 = join(FIXTURES, 'linear4.onnx');

const tooLarge = (sizeBytes: number, maxModelBytes: number) => (e: unknown): boolean =>
  isVerdictError(e) && e.code === ModelFileTooLargeError.code && e.details['sizeBytes'] === sizeBytes && e.details['maxModelBytes'] === maxModelBytes;

let root: string;
let size: number;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'verdict-model-size-'));
  size = (await stat(LINEAR4)).size;
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

void describe('maxModelBytes in the registry', () => {
  void test('defaults to 1 GiB', () => {
    assert.equal(DEFAULT_MAX_MODEL_BYTES, 1024 ** 3);
    assert.equal(new ModelRegistry(root).maxModelBytes, 1024 ** 3);
  });

  void test('register takes a file of exactly maxModelBytes and refuses one byte more, writing nothing', async () => {
    await assert.rejects(new ModelRegistry(root, undefined, { maxModelBytes: size - 1 }).register('demo', LINEAR4), tooLarge(size, size - 1));
    assert.deepEqual(await readdir(root).catch(() => []), [], 'no model directory, no staging directory');
    const model = await new ModelRegistry(root, undefined, { maxModelBytes: size }).register('demo', LINEAR4);
    assert.equal(model.ref, 'demo@1');
  });

  void test('register refuses a device or a directory as a model file instead of reading it forever', async () => {
    const reg = new ModelRegistry(root);
    for (const path of ['/dev/zero', FIXTURES]) {
      await assert.rejects(reg.register('demo', path), (e: unknown) => e instanceof ConfigError && /is not a regular file/.test(e.message), path);
    }
  });

  void test('resolve, inspect, promote and the manifest check refuse a registered file above the bound, before reading it', async () => {
    await new ModelRegistry(root).register('demo', LINEAR4);
    await new ModelRegistry(root).register('demo', LINEAR4);
    const small = new ModelRegistry(root, undefined, { maxModelBytes: size - 1 });
    await assert.rejects(small.resolve('demo@1'), tooLarge(size, size - 1));
    await assert.rejects(small.inspect('demo@1'), tooLarge(size, size - 1));
    await assert.rejects(small.promote('demo', 2), tooLarge(size, size - 1));
    const exact = new ModelRegistry(root, undefined, { maxModelBytes: size });
    const model = await exact.resolve('demo@1');
    await assert.rejects(verifyManifestSignature(model, size - 1), tooLarge(size, size - 1));
    await verifyManifestSignature(model, size);
    assert.equal((await exact.promote('demo', 2)).to, 2);
  });

  void test('an invalid bound is a config error', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => new ModelRegistry(root, undefined, { maxModelBytes: bad }), ConfigError);
  });
});

void describe('maxModelBytes where sessions load', () => {
  void test('the in-thread session cache refuses a file above the bound and loads one at it', async () => {
    const model = await new ModelRegistry(root).register('demo', LINEAR4);
    const key = { modelPath: model.path, modelSha256: model.manifest.sha256 };
    const small = new InThreadRunner({ maxModelBytes: size - 1 });
    try {
      await assert.rejects(small.load(key), tooLarge(size, size - 1));
      const task = { ...key, inputs: [{ name: 'x', type: 'float32' as const, dims: [1, 4], data: new Float32Array(4) }], outputNames: ['y'] };
      await assert.rejects(small.run(task), tooLarge(size, size - 1));
    } finally {
      await small.close();
    }
    const exact = new InThreadRunner({ maxModelBytes: size });
    try {
      await exact.load(key);
    } finally {
      await exact.close();
    }
  });

  void test('an inference worker thread refuses a file above the bound, and loads one at it', async () => {
    const model = await new ModelRegistry(root).register('demo', LINEAR4);
    const key = { modelPath: model.path, modelSha256: model.manifest.sha256 };
    for (const [bound, ok] of [[size - 1, false], [size, true]] as const) {
      const pool = new PiscinaRunner({ threads: 1, maxModelBytes: bound });
      try {
        if (ok) await pool.load(key);
        else await assert.rejects(pool.load(key), tooLarge(size, bound));
      } finally {
        await pool.close();
      }
    }
  });

  void test('a pipeline whose models.maxModelBytes is below a model it uses does not compile, and names the step', async () => {
    const registry = await copyRegistry();
    try {
      const file = await samplePipeline();
      // One byte below the largest model the steps use: that step, and only it, is refused.
      const sizes = await Promise.all(file.steps.map(async (s) => (await stat((await new ModelRegistry(registry).resolve(s.model)).path)).size));
      const largest = Math.max(...sizes);
      const step = sizes.indexOf(largest);
      assert.equal(sizes.filter((n) => n === largest).length, 1, 'one step has the largest model');
      const limited = { ...file, models: { ...file.models, registry, maxModelBytes: largest - 1 }, runtime: { ...file.runtime, workers: 0 } };
      await assert.rejects(
        Engine.create(limited, { baseDir: dirname(samplePipelinePath) }),
        (e: unknown) => isVerdictError(e) && e.code === ModelFileTooLargeError.code && e.message.startsWith(`steps[${step}].model: `),
      );
      const engine = await Engine.create({ ...limited, models: { ...limited.models, maxModelBytes: largest } }, { baseDir: dirname(samplePipelinePath) });
      await engine.close();
    } finally {
      await rm(registry, { recursive: true, force: true });
    }
  });
});

void describe('verdict models --max-model-bytes', () => {
  const run = async (...args: string[]): Promise<{ stderr: string; exitCode: number }> => {
    let stderr = '';
    let exitCode = 0;
    const cmd = modelsCommand({ stdout: { write: () => true }, stderr: { write: (s: string) => { stderr += s; } }, setExitCode: (c) => { exitCode = c; } });
    cmd.exitOverride();
    await cmd.parseAsync([...args, '--registry', root], { from: 'user' });
    return { stderr, exitCode };
  };

  void test('register refuses a file above the bound, takes one at it, and refuses a bound that is not a byte count', async () => {
    const over = await run('register', 'demo', LINEAR4, '--max-model-bytes', String(size - 1));
    assert.equal(over.exitCode, 1);
    assert.match(over.stderr, new RegExp(`^error MODEL_FILE_TOO_LARGE: .*linear4\\.onnx is ${size} bytes, above the ${size - 1}-byte model file bound`));
    const at = await run('register', 'demo', LINEAR4, '--max-model-bytes', String(size));
    assert.equal(at.exitCode, 0, at.stderr);
    for (const bad of ['0', '-5', '1e9', 'lots']) {
      const r = await run('inspect', 'demo', '--max-model-bytes', bad);
      assert.match(r.stderr, /^error CONFIG_INVALID: --max-model-bytes/, bad);
    }
    const inspect = await run('inspect', 'demo', '--max-model-bytes', String(size - 1));
    assert.match(inspect.stderr, /^error MODEL_FILE_TOO_LARGE: /);
  });
});
