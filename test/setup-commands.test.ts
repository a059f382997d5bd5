/**
 * The fresh-machine set-up as the README gives it, and what builds the librdkafka producer (README "Two
 * commands", "Choosing the producer", "Docker"):
 *   - `.ci/run` runs exactly the README's test command, and that command installs the Debian packages, then
 *     builds the producer (CKJS_LINKING=dynamic) in `npm ci`, then tests;
 *   - the Dockerfile's build stage installs the same packages scripts/ensure-system-deps.sh does for the
 *     build, sets the variable before `npm ci` and prunes after it; its runtime stage has the libraries the
 *     producer links. (The image is not built here: no Docker engine.)
 *   - scripts/prune-native-producer.sh, which the Dockerfile runs, on a copy of this package's installed
 *     producer: what it leaves still loads, and is a fraction of the build; and it fails, saying why, where
 *     the producer did not build.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { packageRoot } from '../core/paths.js';
import { LIBRDKAFKA_PACKAGE } from '../streams/kafka/librdkafka-binding.js';

const run = promisify(execFile);
const read = (path: string): string => readFileSync(resolve(packageRoot, path), 'utf8');

/** The shell blocks of the README's "Two commands" section, in order. */
function readmeCommands(): string[] {
  const readme = read('README.md');
  const start = readme.indexOf('## Two commands');
  const end = readme.indexOf('\n## ', start + 1);
  assert.ok(start >= 0 && end > start, 'README has a "Two commands" section');
  return [...readme.slice(start, end).matchAll(/```sh\n([^\n]*)\n```/g)].map((m) => m[1]!);
}

/** The packages scripts/ensure-system-deps.sh installs for the producer's build. */
function nativeBuildDeps(): string[] {
  const m = /^NATIVE_PRODUCER_BUILD_DEPS=\(([^)]*)\)$/m.exec(read('scripts/ensure-system-deps.sh'));
  assert.ok(m !== null, 'ensure-system-deps.sh names NATIVE_PRODUCER_BUILD_DEPS');
  return m[1]!.trim().split(/\s+/);
}

describe('the set-up commands', () => {
  test('.ci/run runs the README\'s test command, which installs the packages, builds the producer, then tests', () => {
    const [demo, tests] = readmeCommands();
    assert.equal(demo, 'ONNXRUNTIME_NODE_INSTALL=skip npm ci && npm run demo');
    assert.equal(tests, 'bash scripts/ensure-system-deps.sh && CKJS_LINKING=dynamic ONNXRUNTIME_NODE_INSTALL=skip npm ci && npm test');
    const commands = read('.ci/run').split('\n').filter((l) => l.length > 0 && !l.startsWith('#') && !l.startsWith('set ') && !l.startsWith('cd '));
    assert.deepEqual(commands, [tests], '.ci/run runs that command and nothing else');
    assert.deepEqual(nativeBuildDeps(), ['libssl-dev', 'zlib1g-dev', 'python3', 'make', 'g++']);
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string>; optionalDependencies: Record<string, string>; allowScripts: Record<string, boolean> };
    assert.equal(pkg.scripts['pretest'], 'bash scripts/ensure-system-deps.sh && bash scripts/check-native-producer.sh');
    assert.ok(LIBRDKAFKA_PACKAGE in pkg.optionalDependencies, 'optional: a plain npm ci passes without it');
    assert.equal(pkg.allowScripts[LIBRDKAFKA_PACKAGE], true, 'npm 11 runs its install script without a warning');
  });

  test('the Dockerfile builds the producer with the same packages, prunes it, and gives the runtime what it links', () => {
    const docker = read('Dockerfile');
    const stages = docker.split(/^FROM /m).slice(1);
    assert.equal(stages.length, 2, 'a build stage and a runtime stage');
    const [build, runtime] = stages as [string, string];
    const install = (stage: string): string[] => {
      const m = /apt-get install -y --no-install-recommends ([^\n&\\]+)/.exec(stage);
      return m === null ? [] : m[1]!.trim().split(/\s+/);
    };
    assert.deepEqual(install(build), nativeBuildDeps());
    const env = build.indexOf('CKJS_LINKING=dynamic');
    const ci = build.indexOf('RUN npm ci');
    assert.ok(env >= 0 && ci > env, 'CKJS_LINKING=dynamic is set before npm ci');
    assert.ok(build.indexOf('bash scripts/prune-native-producer.sh node_modules') > ci, 'pruned after npm ci');
    assert.deepEqual(install(runtime).filter((p) => p === 'libssl3' || p === 'zlib1g'), ['libssl3', 'zlib1g']);
  });
});

describe('scripts/prune-native-producer.sh', () => {
  test('leaves a producer that loads, a fraction of the size of the build', { timeout: 120_000 }, async () => {
    const modules = realpathSync(resolve(packageRoot, 'node_modules'));
    const dir = mkdtempSync(join(tmpdir(), 'verdict-prune-'));
    try {
      // The package copied; every other package linked (it needs `bindings`), as npm would have installed them.
      mkdirSync(join(dir, 'node_modules'));
      for (const entry of readdirSync(modules)) {
        if (entry !== '@confluentinc' && !entry.startsWith('.')) symlinkSync(join(modules, entry), join(dir, 'node_modules', entry));
      }
      cpSync(join(modules, LIBRDKAFKA_PACKAGE), join(dir, 'node_modules', LIBRDKAFKA_PACKAGE), { recursive: true, verbatimSymlinks: true });
      const { stdout } = await run('bash', [resolve(packageRoot, 'scripts/prune-native-producer.sh'), join(dir, 'node_modules')], { timeout: 100_000 });
      const m = /pruned (\d+) MB to (\d+) MB; loads, librdkafka (\d+\.\d+\.\d+)/.exec(stdout);
      assert.ok(m !== null, stdout);
      const [before, after] = [Number(m[1]), Number(m[2])];
      assert.ok(before > 100 && after < 40, `pruned ${before} MB to ${after} MB`);
      const left = readdirSync(join(dir, 'node_modules', LIBRDKAFKA_PACKAGE));
      for (const gone of ['deps', 'src']) assert.ok(!left.includes(gone), `${gone}/ removed`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('fails, naming what is missing, where the producer did not build', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'verdict-prune-'));
    try {
      mkdirSync(join(dir, 'node_modules'));
      await assert.rejects(
        run('bash', [resolve(packageRoot, 'scripts/prune-native-producer.sh'), join(dir, 'node_modules')]),
        (err: { code?: number; stderr?: string }) => {
          assert.equal(err.code, 1);
          assert.match(err.stderr ?? '', /FAIL: .*confluent-kafka-javascript\.node is missing: the package did not build at npm ci \(CKJS_LINKING=dynamic/);
          return true;
        },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
