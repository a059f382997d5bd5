/**
 * Registry names and versions can never lead out of the registry directory: names that read as paths
 * (`../x`, `..%2F`, `/etc`, NUL bytes, Unicode dots, `name@../../x`) and symlinks pointing out (a model
 * directory, a version directory, `model.onnx`, `manifest.json`, `aliases.json`, a dangling one) are refused
 * with REGISTRY_PATH_INVALID on every entry point: the registry API, the `verdict models` CLI and the admin
 * API's promote and rollback over HTTP. Real files and symlinks in a temporary directory, real ONNX models.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ConfigError, RegistryPathError, isVerdictError } from '../core/errors.js';
import { silentLogger } from '../core/log.js';
import { createMetrics } from '../core/metrics.js';
import { serveHttp, type HttpEndpoint } from '../core/metrics-server.js';
import { ModelRegistry } from '../models/registry.js';
import { modelsCommand } from '../cli/models-command.js';
import { createAdminHandler } from '../runtime/admin/admin-handler.js';
import type { AdminTarget } from '../runtime/admin/admin-target.js';
import { promoteModel, rollbackModel } from '../runtime/admin/model-actions.js';
import { compilePipeline } from '../config/compile-pipeline.js';
import { samplePipeline } from './helpers/pipelines.js';
import { shippedRegistry } from './helpers/registry-copy.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/registry/', import.meta.url));
const fixture = (file: string): string => join(FIXTURES, file);

/** Names that must never become a path: traversal, encoded traversal, absolute paths, NUL, Unicode dots and slashes. */
const HOSTILE_NAMES = [
  '../x', '..', '../../../../tmp/x', '..%2F..%2Fetc', '%2e%2e', '/etc', '/tmp/outside', 'a/../../b', 'a\\..\\b',
  'x\0y', '\0', '\u2024\u2024', '\u2024\u2024/x', 'a\uFF0F..\uFF0Fb', '.staging', '',
];
const HOSTILE_IDS = [...HOSTILE_NAMES, 'demo@../../x', 'demo@..%2F..%2Fx', 'demo@/etc', 'demo@\0', 'demo@a/b', 'demo@\u2024\u2024'];

let base: string;
let root: string;
let outside: string;

const isPathError = (e: unknown): boolean => isVerdictError(e) && e.code === RegistryPathError.code && e instanceof RegistryPathError;

/** Every path under `dir`, relative to it (symlinks listed, not followed). */
async function tree(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    out.push(prefix + e.name);
    if (e.isDirectory()) out.push(...(await tree(join(dir, e.name), `${prefix}${e.name}/`)));
  }
  return out.sort();
}

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'verdict-registry-paths-'));
  root = join(base, 'registry');
  outside = join(base, 'outside');
  await mkdir(outside);
  const reg = new ModelRegistry(root);
  await reg.register('demo', fixture('linear4.onnx'), { alias: 'production' });
  await reg.register('demo', fixture('linear4b.onnx'));
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

/** A valid version directory of `demo` (manifest and model) outside the registry, copied from demo@1. */
async function versionOutside(version: number): Promise<string> {
  const dir = join(outside, `v${version}`);
  await cp(join(root, 'demo', '1'), dir, { recursive: true });
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(join(dir, 'manifest.json'), JSON.stringify({ ...manifest, version }));
  return dir;
}

/** The problem `list()` reports for a model, undefined when it listed normally (or is absent). */
async function problemOf(reg: ModelRegistry, name: string): Promise<{ code: string; message: string } | undefined> {
  return (await reg.list()).find((m) => m.name === name)?.problem;
}

void describe('registry names that read as paths', () => {
  void test('are refused by every registry method with REGISTRY_PATH_INVALID, and nothing is written anywhere', async () => {
    const before = await tree(base);
    const reg = new ModelRegistry(root);
    for (const name of HOSTILE_NAMES) {
      const label = JSON.stringify(name);
      await assert.rejects(reg.register(name, fixture('linear4.onnx')), isPathError, `register ${label}`);
      await assert.rejects(reg.promote(name, 1), isPathError, `promote ${label}`);
      await assert.rejects(reg.rollback(name), isPathError, `rollback ${label}`);
    }
    for (const id of HOSTILE_IDS) {
      await assert.rejects(reg.resolve(id), isPathError, `resolve ${JSON.stringify(id)}`);
      await assert.rejects(reg.inspect(id), isPathError, `inspect ${JSON.stringify(id)}`);
    }
    await assert.rejects(reg.promote('demo', 1, '../x'), isPathError, 'an alias that reads as a path');
    assert.deepEqual(await tree(base), before);
    assert.equal((await reg.resolve('demo@production')).ref, 'demo@1', 'the registry still works');
  });
});

void describe('symlinks that lead out of the registry', () => {
  void test('a version directory symlinked to a valid version outside: refused on resolve, inspect, list, promote and register', async () => {
    await symlink(await versionOutside(3), join(root, 'demo', '3'));
    const reg = new ModelRegistry(root);
    await assert.rejects(reg.resolve('demo@3'), isPathError);
    await assert.rejects(reg.resolve('demo'), isPathError, 'the latest version is looked for among all of them');
    await assert.rejects(reg.inspect('demo@1'), isPathError);
    assert.equal((await problemOf(reg, 'demo'))?.code, RegistryPathError.code, 'listed with its problem, not followed');
    await assert.rejects(reg.promote('demo', 3), isPathError);
    await assert.rejects(reg.register('demo', fixture('linear4.onnx')), isPathError);
    assert.deepEqual(await readdir(join(outside, 'v3')), ['manifest.json', 'model.onnx'], 'nothing was written outside');
  });

  void test('a model directory symlinked out: refused on resolve and list, and register writes nothing through it', async () => {
    const evil = join(outside, 'evil');
    await mkdir(evil);
    await cp(await versionOutside(1), join(evil, '1'), { recursive: true });
    await symlink(evil, join(root, 'evil'));
    const reg = new ModelRegistry(root);
    await assert.rejects(reg.resolve('evil'), isPathError);
    assert.equal((await problemOf(reg, 'evil'))?.code, RegistryPathError.code);
    const demo = (await reg.list()).find((m) => m.name === 'demo');
    assert.ok(demo !== undefined && demo.problem === undefined && demo.versions.length > 0, 'one broken model does not hide the others');
    await assert.rejects(reg.register('evil', fixture('linear4.onnx')), isPathError);
    assert.deepEqual(await tree(evil), ['1', '1/manifest.json', '1/model.onnx'], 'no staging directory or version appeared outside');
  });

  void test('aliases.json symlinked out: refused on resolve by alias and on promote; the file outside is untouched', async () => {
    const aliases = join(outside, 'aliases.json');
    const text = JSON.stringify({ aliases: { production: 2 }, history: [] });
    await writeFile(aliases, text);
    await rm(join(root, 'demo', 'aliases.json'));
    await symlink(aliases, join(root, 'demo', 'aliases.json'));
    const reg = new ModelRegistry(root);
    await assert.rejects(reg.resolve('demo@production'), isPathError);
    await assert.rejects(reg.resolve('demo@1'), isPathError, 'every id reads the aliases');
    await assert.rejects(reg.promote('demo', 2), isPathError);
    await assert.rejects(reg.rollback('demo'), isPathError);
    assert.equal(await readFile(aliases, 'utf8'), text);
  });

  void test('model.onnx symlinked out is refused even when its bytes match the manifest', async () => {
    const model = join(outside, 'model.onnx');
    await cp(join(root, 'demo', '2', 'model.onnx'), model);
    await rm(join(root, 'demo', '2', 'model.onnx'));
    await symlink(model, join(root, 'demo', '2', 'model.onnx'));
    const reg = new ModelRegistry(root);
    await assert.rejects(reg.resolve('demo@2'), isPathError);
    await assert.rejects(reg.inspect('demo@2'), isPathError);
    await assert.rejects(reg.promote('demo', 2), isPathError);
    assert.equal((await reg.resolve('demo@1')).ref, 'demo@1', 'the other version still resolves');
  });

  void test('manifest.json symlinked out, and a dangling symlink, are refused', async () => {
    const manifest = join(outside, 'manifest.json');
    await cp(join(root, 'demo', '2', 'manifest.json'), manifest);
    await rm(join(root, 'demo', '2', 'manifest.json'));
    await symlink(manifest, join(root, 'demo', '2', 'manifest.json'));
    await symlink(join(outside, 'does-not-exist'), join(root, 'demo', '4'));
    const reg = new ModelRegistry(root);
    await assert.rejects(reg.resolve('demo@2'), isPathError);
    await assert.rejects(reg.resolve('demo@4'), isPathError);
  });

  void test('a symlink to /tmp itself (outside the registry) as a version directory is refused', async () => {
    await symlink(tmpdir(), join(root, 'demo', '5'));
    await assert.rejects(new ModelRegistry(root).resolve('demo@5'), isPathError);
  });

  void test('a registry directory that is itself a symlink works: resolve, register, promote, rollback, list', async () => {
    const link = join(base, 'registry-link');
    await symlink(root, link);
    const reg = new ModelRegistry(link);
    assert.equal((await reg.resolve('demo')).ref, 'demo@1');
    assert.equal((await reg.register('demo', fixture('linear4.onnx'))).ref, 'demo@3');
    assert.equal((await reg.promote('demo', 3)).to, 3);
    assert.equal((await reg.rollback('demo')).to, 1);
    assert.deepEqual(await reg.list(), [{ name: 'demo', versions: [1, 2, 3], aliases: { production: 1 } }]);
  });
});

void describe('a pipeline naming a model by a path', () => {
  void test('does not compile: REGISTRY_PATH_INVALID, with the step\'s config path', async () => {
    const file = await samplePipeline();
    for (const model of ['../../etc', 'fraud_gbt@../../x', '/etc/passwd']) {
      const steps = file.steps.map((s, i) => (i === 1 ? { ...s, model } : s));
      // The shipped registry (only read): every other step resolves, so the refusal is this step's.
      await assert.rejects(compilePipeline({ ...file, steps }, new ModelRegistry(shippedRegistry)), (e: unknown) =>
        isPathError(e) && (e as Error).message.startsWith('steps[1].model: '), model);
    }
  });
});

void describe('registry documents that are not plain files', () => {
  void test('a manifest.json or aliases.json that is a FIFO is refused, not read (which would block for ever)', async () => {
    await rm(join(root, 'demo', '2', 'manifest.json'));
    execFileSync('mkfifo', [join(root, 'demo', '2', 'manifest.json')]);
    const reg = new ModelRegistry(root);
    const notRegular = (e: unknown): boolean => e instanceof ConfigError && /is not a regular file/.test(e.message);
    await assert.rejects(reg.resolve('demo@2'), notRegular);
    await rm(join(root, 'demo', 'aliases.json'));
    execFileSync('mkfifo', [join(root, 'demo', 'aliases.json')]);
    await assert.rejects(reg.resolve('demo@1'), notRegular);
    const problem = await problemOf(reg, 'demo');
    assert.ok(problem !== undefined && problem.code === ConfigError.code && /is not a regular file/.test(problem.message), JSON.stringify(problem));
  });
});

void describe('the models CLI', () => {
  const run = async (...args: string[]): Promise<{ stdout: string; stderr: string; exitCode: number }> => {
    let stdout = '';
    let stderr = '';
    let exitCode = 0;
    const cmd = modelsCommand({
      stdout: { write: (s: string) => { stdout += s; } },
      stderr: { write: (s: string) => { stderr += s; } },
      setExitCode: (c) => { exitCode = c; },
      cwd: base,
    });
    cmd.exitOverride();
    await cmd.parseAsync([...args, '--registry', root], { from: 'user' });
    return { stdout, stderr, exitCode };
  };

  void test('refuses names, ids and symlinks that lead out with "error REGISTRY_PATH_INVALID" and exit status 1', async () => {
    const cases: string[][] = [
      ['register', '../x', fixture('linear4.onnx')],
      ['register', '/etc', fixture('linear4.onnx')],
      ['register', 'a\u2024\u2024', fixture('linear4.onnx')],
      ['inspect', 'demo@../../x'],
      ['inspect', '..%2F..%2Fetc'],
      ['promote', '../demo', '1'],
      ['rollback', '/etc'],
    ];
    for (const args of cases) {
      const r = await run(...args);
      assert.equal(r.exitCode, 1, args.join(' '));
      assert.match(r.stderr, /^error REGISTRY_PATH_INVALID: /, args.join(' '));
    }
    await symlink(await versionOutside(3), join(root, 'demo', '3'));
    const listed = await run('list');
    assert.match(listed.stdout, /demo\s+unreadable: REGISTRY_PATH_INVALID/, 'the model is listed with its problem, the others as usual');
    for (const args of [['list'], ['inspect', 'demo@3'], ['promote', 'demo', '3']]) {
      const r = await run(...args);
      assert.equal(r.exitCode, 1, args.join(' '));
      assert.match(r.stderr, /^error REGISTRY_PATH_INVALID: .* resolves to .*outside\/v3, outside the registry/, args.join(' '));
    }
  });
});

void describe('the admin API over HTTP', () => {
  const TOKEN = 'registry-paths-token-0123456789';
  let server: HttpEndpoint;
  beforeEach(async () => {
    const deps = { registry: new ModelRegistry(root), refresh: undefined };
    const unused = (): never => { throw new Error('not used by this test'); };
    const target: AdminTarget = {
      status: unused, models: unused, pause: unused, resume: unused, config: unused,
      promote: (name, version, alias) => promoteModel(deps, name, version, alias),
      rollback: (name, alias) => rollbackModel(deps, name, alias),
    };
    server = await serveHttp(createAdminHandler({ token: TOKEN, target, logger: silentLogger, metrics: createMetrics() }), { host: '127.0.0.1', port: 0, what: 'admin endpoint' });
  });
  afterEach(() => server.close());

  const post = async (path: string, body: unknown): Promise<[number, string | undefined]> => {
    const response = await fetch(`http://127.0.0.1:${server.port}${path}`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(body),
    });
    const json = await response.json() as { error?: { code: string } };
    return [response.status, json.error?.code];
  };

  void test('promote and rollback of an encoded traversal, NUL or absolute name answer 400 REGISTRY_PATH_INVALID', async () => {
    // (A `..` or `%2E%2E` segment never gets here: URL resolution removes it, and the path names no endpoint.)
    for (const name of ['..%2F..%2Fetc', '..%2F', '%2Fetc', 'a%00b', '%E2%80%A4%E2%80%A4', 'a%5C..%5Cb']) {
      assert.deepEqual(await post(`/admin/models/${name}/promote`, { version: 1 }), [400, 'REGISTRY_PATH_INVALID'], name);
      assert.deepEqual(await post(`/admin/models/${name}/rollback`, {}), [400, 'REGISTRY_PATH_INVALID'], name);
    }
    assert.deepEqual(await post('/admin/models/demo/promote', { version: 2, alias: '..%2Fx' }), [400, 'REGISTRY_PATH_INVALID']);
  });

  void test('a promote through an aliases.json symlinked out answers 400 REGISTRY_PATH_INVALID; the file outside is untouched', async () => {
    const aliases = join(outside, 'aliases.json');
    await writeFile(aliases, '{"aliases":{},"history":[]}');
    await rm(join(root, 'demo', 'aliases.json'));
    await symlink(aliases, join(root, 'demo', 'aliases.json'));
    assert.deepEqual(await post('/admin/models/demo/promote', { version: 2 }), [400, 'REGISTRY_PATH_INVALID']);
    assert.equal(await readFile(aliases, 'utf8'), '{"aliases":{},"history":[]}');
  });
});
