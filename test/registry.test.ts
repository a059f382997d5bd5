/**
 * The model registry against real ONNX files (tiny models from test/fixtures/registry, made by
 * make-fixtures.py there) in a fresh temporary registry per test, and the `models` CLI over the same.
 */
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ConfigError, ModelIntegrityError, ModelNotFoundError, ModelSignatureError } from '../core/errors.js';
import { HashCache, sha256File } from '../models/integrity.js';
import { ModelRegistry } from '../models/registry.js';
import { modelsCommand } from '../cli/models-command.js';

// Compiled to dist/test/, so the repository root is two levels up.
const FIXTURES = fileURLToPath(new URL('../../test/fixtures/registry/', import.meta.url));
const fixture = (file: string): string => join(FIXTURES, file);
const T0 = Date.parse('2026-01-02T03:04:05.000Z');

let root: string;
let now: number;
const clock = { now: (): number => now };
const registry = (options: { hashCache?: HashCache } = {}): ModelRegistry => new ModelRegistry(root, undefined, { clock, ...options });

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'verdict-registry-'));
  now = T0;
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Every path under the registry, relative to it. */
async function tree(dir = root, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix + e.name;
    out.push(rel);
    if (e.isDirectory()) out.push(...(await tree(join(dir, e.name), `${rel}/`)));
  }
  return out.sort();
}

/** Replaces one byte in place, keeping the size, as silent corruption would. */
async function flipByte(file: string, at: number): Promise<void> {
  const bytes = await readFile(file);
  bytes[at] = (bytes[at] ?? 0) ^ 0xff;
  await writeFile(file, bytes);
}

void describe('register', () => {
  void test('numbers versions from 1 and writes a manifest with the signature, sha256 and metrics', async () => {
    const reg = registry();
    const first = await reg.register('demo', fixture('linear4.onnx'), { description: 'tiny linear', metrics: { auc: 0.93 } });
    now = T0 + 1000;
    const second = await reg.register('demo', fixture('linear4b.onnx'));
    assert.equal(first.ref, 'demo@1');
    assert.equal(second.ref, 'demo@2');
    assert.equal(first.path, join(root, 'demo', '1', 'model.onnx'));

    const manifest: unknown = JSON.parse(await readFile(join(root, 'demo', '1', 'manifest.json'), 'utf8'));
    assert.deepEqual(manifest, {
      name: 'demo',
      version: 1,
      description: 'tiny linear',
      createdAt: '2026-01-02T03:04:05.000Z',
      sha256: await sha256File(fixture('linear4.onnx')),
      inputs: [{ name: 'x', type: 'float32', shape: ['N', 4] }],
      outputs: [{ name: 'y', type: 'float32', shape: ['N', 1] }],
      metrics: { auc: 0.93 },
    });
    assert.deepEqual(await readFile(first.path), await readFile(fixture('linear4.onnx')));
    assert.equal(second.manifest.createdAt, '2026-01-02T03:04:06.000Z');
    assert.equal(second.manifest.sha256, await sha256File(fixture('linear4b.onnx')));
  });

  void test('takes an explicit version, continues after it, and never overwrites one', async () => {
    const reg = registry();
    assert.equal((await reg.register('demo', fixture('linear4.onnx'), { version: 5 })).version, 5);
    assert.equal((await reg.register('demo', fixture('linear4b.onnx'))).version, 6);
    const before = await readFile(join(root, 'demo', '5', 'manifest.json'), 'utf8');
    await assert.rejects(reg.register('demo', fixture('linear4b.onnx'), { version: 5 }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /demo@5 already exists/);
      return true;
    });
    assert.equal(await readFile(join(root, 'demo', '5', 'manifest.json'), 'utf8'), before);
  });

  void test('concurrent registrations claim distinct versions', async () => {
    const reg = registry();
    const versions = await Promise.all([
      reg.register('demo', fixture('linear4.onnx')),
      reg.register('demo', fixture('linear4b.onnx')),
      reg.register('demo', fixture('linear4.onnx')),
    ]);
    assert.deepEqual(versions.map((m) => m.version).sort(), [1, 2, 3]);
    assert.deepEqual((await reg.list())[0]?.versions, [1, 2, 3]);
  });

  void test('refuses a file that is not an ONNX model and writes nothing', async () => {
    const reg = registry();
    await assert.rejects(reg.register('demo', fixture('broken.onnx')), (err: unknown) => {
      assert.ok(err instanceof ModelIntegrityError);
      assert.match(err.message, /broken\.onnx is not a loadable ONNX model/);
      return true;
    });
    await assert.rejects(reg.register('demo', fixture('missing.onnx')), ConfigError);
    assert.deepEqual(await tree(), []);
  });

  void test('refuses a model whose signature differs from the expected one, naming the difference', async () => {
    const reg = registry();
    const cases: Array<[Parameters<ModelRegistry['register']>[2], RegExp]> = [
      [{ inputs: [{ name: 'x', type: 'float32', shape: ['N', 8] }] }, /input x: expected shape \[N, 8\], the model has \[N, 4\]/],
      [{ inputs: [{ name: 'x', type: 'float64', shape: ['N', 4] }] }, /input x: expected type float64, the model has float32/],
      [{ inputs: [{ name: 'features', type: 'float32', shape: ['N', 4] }] }, /inputs differ: expected features; the model has x/],
      [{ outputs: [{ name: 'score', type: 'float32', shape: ['N', 1] }] }, /output score is expected but the model has only y/],
    ];
    for (const [options, message] of cases) {
      await assert.rejects(reg.register('demo', fixture('linear4.onnx'), options), (err: unknown) => {
        assert.ok(err instanceof ModelSignatureError, String(err));
        assert.match(err.message, message);
        return true;
      });
    }
    assert.deepEqual(await tree(), []);
  });

  void test('accepts a matching expected signature', async () => {
    const model = await registry().register('demo', fixture('linear4.onnx'), {
      inputs: [{ name: 'x', type: 'float32', shape: ['batch', 4] }],
      outputs: [{ name: 'y', type: 'float32', shape: ['N', 1] }],
    });
    assert.deepEqual(model.manifest.inputs, [{ name: 'x', type: 'float32', shape: ['N', 4] }]);
  });

  void test('needs the size of a symbolic per-row input dim, and learns per-row output dims from the smoke run', async () => {
    const reg = registry();
    await assert.rejects(reg.register('ident', fixture('identity_f.onnx')), /dimension F is not fixed/);
    const model = await reg.register('ident', fixture('identity_f.onnx'), { inputs: [{ name: 'x', type: 'float32', shape: ['N', 3] }] });
    assert.deepEqual(model.manifest.inputs, [{ name: 'x', type: 'float32', shape: ['N', 3] }]);
    assert.deepEqual(model.manifest.outputs, [{ name: 'y', type: 'float32', shape: ['N', 3] }]);
  });

  void test('refuses a model with a fixed batch dimension', async () => {
    await assert.rejects(registry().register('fixed', fixture('fixed1.onnx')), (err: unknown) => {
      assert.ok(err instanceof ModelSignatureError);
      assert.match(err.message, /input x has a fixed first dimension 1/);
      return true;
    });
  });
});

void describe('resolve', () => {
  void test('a bare name means the latest version until production is set, then production', async () => {
    const reg = registry();
    await reg.register('demo', fixture('linear4.onnx'));
    await reg.register('demo', fixture('linear4b.onnx'));
    assert.equal((await reg.resolve('demo')).ref, 'demo@2');
    await reg.promote('demo', 1, 'production');
    assert.equal((await reg.resolve('demo')).ref, 'demo@1');
    assert.equal((await reg.resolve('demo@production')).version, 1);
    assert.equal((await reg.resolve('demo@2')).version, 2);
    await reg.promote('demo', 2, 'canary');
    const canary = await reg.resolve('demo@canary');
    assert.equal(canary.ref, 'demo@2');
    assert.equal(canary.manifest.sha256, await sha256File(fixture('linear4b.onnx')));
  });

  void test('names what exists when a model, version or alias is unknown', async () => {
    const reg = registry();
    await reg.register('demo', fixture('linear4.onnx'), { alias: 'production' });
    const cases: Array<[string, RegExp]> = [
      ['nope', /model nope is not in the registry .* \(models: demo\)/],
      ['demo@7', /model demo has no version 7 \(versions: 1\)/],
      ['demo@canary', /model demo has no alias canary \(aliases: production\)/],
    ];
    for (const [id, message] of cases) {
      await assert.rejects(reg.resolve(id), (err: unknown) => {
        assert.ok(err instanceof ModelNotFoundError);
        assert.match(err.message, message);
        return true;
      });
    }
  });

  void test('refuses a model file whose bytes no longer match the manifest', async () => {
    const { manifest } = await registry().register('demo', fixture('linear4.onnx'));
    const file = join(root, 'demo', '1', 'model.onnx');
    await flipByte(file, 10);
    const actual = await sha256File(file);
    await assert.rejects(registry().resolve('demo@1'), (err: unknown) => {
      assert.ok(err instanceof ModelIntegrityError);
      assert.equal(err.code, 'MODEL_INTEGRITY');
      assert.equal(err.message, `${file} does not match its manifest: expected sha256 ${manifest.sha256}, actual ${actual}`);
      return true;
    });
  });

  void test('hashes a version once and again only after its file changes', async () => {
    await registry().register('demo', fixture('linear4.onnx'));
    const cache = new HashCache();
    const reg = registry({ hashCache: cache });
    for (let i = 0; i < 3; i++) await reg.resolve('demo@1');
    assert.equal(cache.filesHashed, 1);

    const file = join(root, 'demo', '1', 'model.onnx');
    await flipByte(file, 10);
    // Timestamps are coarse (a few ms); give the edit a distinct mtime so the test does not race the clock.
    const { mtime } = await stat(file);
    await utimes(file, mtime, new Date(mtime.getTime() + 5000));
    await assert.rejects(reg.resolve('demo@1'), ModelIntegrityError);
    assert.equal(cache.filesHashed, 2);
  });

  void test('reports a manifest field that fails validation with the file and the field', async () => {
    const reg = registry();
    await reg.register('demo', fixture('linear4.onnx'));
    const file = join(root, 'demo', '1', 'manifest.json');
    const manifest = JSON.parse(await readFile(file, 'utf8')) as { inputs: Array<{ shape: unknown[] }> };
    manifest.inputs[0]!.shape = [3, 4];
    await writeFile(file, JSON.stringify(manifest));
    await assert.rejects(reg.resolve('demo'), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.ok(err.message.includes(file));
      assert.match(err.message, /inputs\[0\]\.shape: shape\[0\] must be the dynamic batch dimension/);
      return true;
    });
  });
});

void describe('aliases', () => {
  void test('promote moves an alias and records each move in the history', async () => {
    const reg = registry();
    await reg.register('demo', fixture('linear4.onnx'));
    await reg.register('demo', fixture('linear4b.onnx'));
    assert.deepEqual(await reg.promote('demo', 1, 'production'), { name: 'demo', alias: 'production', from: null, to: 1, at: '2026-01-02T03:04:05.000Z' });
    now = T0 + 60_000;
    const change = await reg.promote('demo', 2, 'production');
    assert.equal(change.from, 1);
    assert.equal(change.to, 2);
    // The same version again is not a move.
    await reg.promote('demo', 2, 'production');
    const file: unknown = JSON.parse(await readFile(join(root, 'demo', 'aliases.json'), 'utf8'));
    assert.deepEqual(file, {
      aliases: { production: 2 },
      history: [
        { alias: 'production', from: null, to: 1, at: '2026-01-02T03:04:05.000Z', action: 'promote' },
        { alias: 'production', from: 1, to: 2, at: '2026-01-02T03:05:05.000Z', action: 'promote' },
      ],
    });
  });

  void test('promote refuses an unknown model or version', async () => {
    const reg = registry();
    await reg.register('demo', fixture('linear4.onnx'));
    await assert.rejects(reg.promote('demo', 3, 'production'), /model demo has no version 3 \(versions: 1\)/);
    await assert.rejects(reg.promote('other', 1, 'production'), ModelNotFoundError);
    await assert.rejects(reg.promote('demo', 1, '9lives'), ConfigError);
  });

  void test('promote and rollback refuse a version whose manifest does not describe its model, and the alias stays', async () => {
    const reg = registry();
    await reg.register('demo', fixture('linear4.onnx'), { alias: 'production' });
    await reg.register('demo', fixture('linear4b.onnx'));
    // A hand edit that keeps model.onnx (so its sha256) but renames an output: no engine could run it.
    const manifestPath = join(root, 'demo', '2', 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { outputs: Array<{ name: string }> };
    manifest.outputs[0]!.name = 'renamed';
    await writeFile(manifestPath, JSON.stringify(manifest));
    await assert.rejects(registry().promote('demo', 2, 'production'), (err: Error & { code?: string }) => {
      assert.equal(err.code, ModelSignatureError.code);
      assert.match(err.message, /demo@2: the manifest does not describe the model/);
      return true;
    });
    assert.equal((await registry().resolve('demo@production')).version, 1);
  });

  void test('rollback points an alias back to its previous version and records it', async () => {
    const reg = registry();
    await reg.register('demo', fixture('linear4.onnx'), { alias: 'production' });
    await reg.register('demo', fixture('linear4b.onnx'), { alias: 'production' });
    assert.equal((await reg.resolve('demo')).version, 2);
    const change = await reg.rollback('demo', 'production');
    assert.deepEqual([change.from, change.to], [2, 1]);
    assert.equal((await reg.resolve('demo')).version, 1);
    const file = JSON.parse(await readFile(join(root, 'demo', 'aliases.json'), 'utf8')) as { history: Array<{ action: string; from: number; to: number }> };
    assert.deepEqual(file.history.map((h) => [h.action, h.from, h.to]), [
      ['promote', null, 1],
      ['promote', 1, 2],
      ['rollback', 2, 1],
    ]);
  });

  void test('rollback is refused when the alias has no earlier version', async () => {
    const reg = registry();
    await reg.register('demo', fixture('linear4.onnx'), { alias: 'production' });
    await assert.rejects(reg.rollback('demo', 'production'), /cannot roll back demo@production: its history has no earlier version/);
    await assert.rejects(reg.rollback('demo', 'canary'), ConfigError);
    assert.equal((await reg.resolve('demo@production')).version, 1);
  });

  void test('rollback refuses a previous version that fails its integrity check', async () => {
    const reg = registry();
    await reg.register('demo', fixture('linear4.onnx'), { alias: 'production' });
    await reg.register('demo', fixture('linear4b.onnx'), { alias: 'production' });
    await flipByte(join(root, 'demo', '1', 'model.onnx'), 10);
    await assert.rejects(registry().rollback('demo', 'production'), ModelIntegrityError);
    assert.equal((await registry().resolve('demo')).version, 2);
  });
});

void describe('list, inspect and atomic writes', () => {
  void test('list shows every model with versions and aliases, ignoring staging leftovers', async () => {
    const reg = registry();
    await reg.register('beta', fixture('linear4.onnx'), { alias: 'production' });
    await reg.register('alpha', fixture('linear4.onnx'));
    await reg.register('alpha', fixture('linear4b.onnx'), { alias: 'canary' });
    await mkdir(join(root, 'alpha', '.staging-crashed'));
    await mkdir(join(root, '.tmp'));
    assert.deepEqual(await reg.list(), [
      { name: 'alpha', versions: [1, 2], aliases: { canary: 2 } },
      { name: 'beta', versions: [1], aliases: { production: 1 } },
    ]);
  });

  void test('inspect reports the aliases, size and integrity of a version without refusing a damaged one', async () => {
    const reg = registry();
    await reg.register('demo', fixture('linear4.onnx'), { alias: 'production' });
    await reg.promote('demo', 1, 'canary');
    const info = await reg.inspect('demo');
    assert.equal(info.model.ref, 'demo@1');
    assert.deepEqual(info.aliases, ['canary', 'production']);
    assert.equal(info.sizeBytes, (await stat(fixture('linear4.onnx'))).size);
    assert.equal(info.integrity.ok, true);
    await flipByte(info.model.path, 10);
    const damaged = await registry().inspect('demo@1');
    assert.equal(damaged.integrity.ok, false);
    assert.equal(damaged.integrity.actualSha256, await sha256File(info.model.path));
  });

  void test('registering, promoting, rolling back and failing leave no temporary files', async () => {
    const reg = registry();
    await reg.register('demo', fixture('linear4.onnx'), { alias: 'production' });
    await reg.register('demo', fixture('linear4b.onnx'), { alias: 'production' });
    await reg.rollback('demo');
    await assert.rejects(reg.register('demo', fixture('linear4.onnx'), { version: 1 }));
    await assert.rejects(reg.register('demo', fixture('broken.onnx')));
    assert.deepEqual(await tree(), [
      'demo', 'demo/1', 'demo/1/manifest.json', 'demo/1/model.onnx', 'demo/2', 'demo/2/manifest.json', 'demo/2/model.onnx', 'demo/aliases.json',
    ]);
  });
});

void describe('models CLI', () => {
  async function run(...args: string[]): Promise<{ stdout: string; stderr: string; exitCode: number }> {
    let stdout = '';
    let stderr = '';
    let exitCode = 0;
    const command = modelsCommand({
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
      setExitCode: (code) => (exitCode = code),
      cwd: root,
    });
    await command.parseAsync([...args, '--registry', '.'], { from: 'user' });
    return { stdout, stderr, exitCode };
  }

  void test('registers, promotes, lists and rolls back, in tables and JSON', async () => {
    const reg1 = await run('register', 'demo', fixture('linear4.onnx'), '--description', 'tiny', '--metric', 'auc=0.93', '--metric', 'ks=0.41', '--alias', 'production');
    assert.equal(reg1.exitCode, 0, reg1.stderr);
    assert.match(reg1.stdout, /^registered demo@1 as production$/m);
    assert.match(reg1.stdout, /^metrics +auc=0\.93 ks=0\.41$/m);
    assert.match(reg1.stdout, /^input +x: float32\[N, 4\]$/m);

    const reg2 = await run('register', 'demo', fixture('linear4b.onnx'), '--json');
    assert.equal((JSON.parse(reg2.stdout) as { ref: string }).ref, 'demo@2');

    assert.equal((await run('promote', 'demo', '2')).stdout, 'demo@production: 1 -> 2\n');
    assert.equal((await run('list')).stdout, 'NAME  VERSIONS  ALIASES\ndemo  1, 2      production=2\n');
    assert.equal((await run('rollback', 'demo')).stdout, 'demo@production: 2 -> 1 (rolled back)\n');
    const listed = JSON.parse((await run('list', '--json')).stdout) as unknown;
    assert.deepEqual(listed, [{ name: 'demo', versions: [1, 2], aliases: { production: 1 } }]);

    const inspected = await run('inspect', 'demo@2');
    assert.match(inspected.stdout, /^integrity ok$/m);
    assert.match(inspected.stdout, /^size +142 bytes$/m);
  });

  void test('prints errors as "error CODE: message" and exits non-zero', async () => {
    const missing = await run('inspect', 'ghost');
    assert.equal(missing.exitCode, 1);
    assert.equal(missing.stdout, '');
    assert.match(missing.stderr, /^error MODEL_NOT_FOUND: model ghost is not in the registry/);

    const broken = await run('register', 'demo', fixture('broken.onnx'));
    assert.equal(broken.exitCode, 1);
    assert.match(broken.stderr, /^error MODEL_INTEGRITY: .*broken\.onnx is not a loadable ONNX model/);

    const metric = await run('register', 'demo', fixture('linear4.onnx'), '--metric', 'auc');
    assert.match(metric.stderr, /^error CONFIG_INVALID: --metric auc: expected name=number/);

    await run('register', 'demo', fixture('linear4.onnx'));
    await flipByte(join(root, 'demo', '1', 'model.onnx'), 10);
    const damaged = await run('inspect', 'demo');
    assert.match(damaged.stdout, /^integrity MISMATCH/m);
    assert.match(damaged.stderr, /^error MODEL_INTEGRITY: .* expected sha256 [0-9a-f]{64}, actual [0-9a-f]{64}$/m);
    assert.equal(damaged.exitCode, 1);
  });
});
