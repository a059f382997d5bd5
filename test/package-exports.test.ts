/**
 * The package's `exports` map: a project that depends on verdict can import the public entry point and
 * package.json, and nothing under dist/ by path. Checked from a scratch project whose node_modules/verdict
 * links to this repository, as an installed dependency would resolve.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';

// Compiled to dist/test/, so the repository root is two levels up.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

let project: string;
before(async () => {
  project = await mkdtemp(join(tmpdir(), 'verdict-consumer-'));
  await mkdir(join(project, 'node_modules'));
  await symlink(ROOT, join(project, 'node_modules', 'verdict'), 'dir');
  await writeFile(join(project, 'package.json'), '{ "type": "module" }\n');
});
after(async () => {
  await rm(project, { recursive: true, force: true });
});

/** What `import(specifier)` gives in the scratch project: the named export's type, or the error code. */
async function importFrom(specifier: string, name: string): Promise<string> {
  const script = `import(${JSON.stringify(specifier)}, ${specifier.endsWith('.json') ? "{ with: { type: 'json' } }" : '{}'})
    .then((m) => console.log(typeof m[${JSON.stringify(name)}]), (e) => console.log(e.code));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: project });
  return stdout.trim();
}

describe('package exports', () => {
  test('the public entry point imports by the package name', async () => {
    assert.equal(await importFrom('verdict', 'Verdict'), 'function');
    assert.equal(await importFrom('verdict/package.json', 'default'), 'object');
  });

  test('the daemon embeds from code: createDaemon, Daemon, KafkaSource and KafkaSink are public', async () => {
    for (const name of ['createDaemon', 'Daemon', 'KafkaSource', 'KafkaSink', 'ConfigError']) {
      assert.equal(await importFrom('verdict', name), 'function', name);
    }
    // Internals stay internal: the loader behind createDaemon is not exported.
    assert.equal(await importFrom('verdict', 'resolveDaemonConfig'), 'undefined');
  });

  test('internal modules cannot be imported by path, dist/index.js included', async () => {
    assert.equal(await importFrom('verdict/dist/runtime/engine.js', 'Engine'), 'ERR_PACKAGE_PATH_NOT_EXPORTED');
    assert.equal(await importFrom('verdict/dist/index.js', 'Verdict'), 'ERR_PACKAGE_PATH_NOT_EXPORTED');
    assert.equal(await importFrom('verdict/core/errors.js', 'VerdictError'), 'ERR_PACKAGE_PATH_NOT_EXPORTED');
  });
});
