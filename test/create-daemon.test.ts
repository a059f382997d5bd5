/**
 * `createDaemon`'s config: a file and an object go through one loader (config/load-daemon.ts), so the same
 * config gives the same loaded config either way, and a bad object is refused with CONFIG_INVALID naming
 * the field, before anything starts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify as stringifyYaml } from 'yaml';
import { loadDaemonConfig, resolveDaemonConfig } from '../config/load-daemon.js';
import { ConfigError, createDaemon, type Daemon, type DaemonConfigInput } from '../index.js';

let dir: string;
before(async () => { dir = await mkdtemp(join(tmpdir(), 'verdict-create-daemon-')); });
after(async () => { await rm(dir, { recursive: true, force: true }); });

const config: DaemonConfigInput = {
  pipeline: 'pipelines/card-risk.yaml',
  kafka: { brokers: ['k1:9092', 'k2:9092'], groupId: 'fraud', producer: { compression: 'gzip' } },
  shutdown: { drainTimeoutMs: 5_000 },
  metrics: { port: 0 },
};

describe('createDaemon config', () => {
  test('a bad config object rejects with CONFIG_INVALID naming each field, and nothing starts', async () => {
    const bad = { ...config, kafka: { brokers: ['no-port'] }, metrics: { prot: 9464 } } as unknown as DaemonConfigInput;
    await assert.rejects(createDaemon(bad), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, ConfigError.code);
      assert.match(err.message, /^daemon config is invalid:/);
      assert.match(err.message, /kafka\.brokers\[0\]: must be host:port/);
      assert.match(err.message, /metrics: Unrecognized key: "prot"/);
      return true;
    });
    await assert.rejects(createDaemon(null as unknown as DaemonConfigInput), { code: ConfigError.code });
  });

  test('the file form and the object form of one config load the same, environment overrides included', async () => {
    const path = join(dir, 'daemon.yaml');
    await writeFile(path, stringifyYaml(config));
    const env = { VERDICT_KAFKA__GROUP_ID: 'from-env', VERDICT_STREAM__MAX_INFLIGHT: '64', HOME: '/x' };
    const fromFile = await loadDaemonConfig(path, env);
    const fromObject = resolveDaemonConfig(config, { source: 'daemon config', baseDir: dir, env });
    assert.deepEqual(fromObject, fromFile);
    assert.equal(fromFile.pipelinePath, join(dir, 'pipelines/card-risk.yaml'), 'a relative pipeline resolves against the base directory');
    assert.equal(fromFile.config.kafka.groupId, 'from-env');
    assert.deepEqual(fromFile.overridden, ['kafka.groupId', 'stream.maxInflight']);
    assert.equal(config.kafka.groupId, 'fraud', 'the caller\'s object is not modified');
  });

  test('an object takes environment overrides only from an env it is given, and resolves its pipeline against the working directory', async () => {
    const offline: DaemonConfigInput = { ...config, metrics: { enabled: false } };
    // The pipeline file is read by start(), which fails there, naming the absolute path it resolved.
    const startError = async (daemon: Daemon): Promise<string> => {
      const err = await daemon.start().then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(daemon.state, 'failed');
      return err.message;
    };
    process.env['VERDICT_PIPELINE'] = 'from-process-env.yaml';
    try {
      const daemon = await createDaemon(offline);
      assert.equal(daemon.state, 'starting', 'created, not started');
      assert.match(await startError(daemon), new RegExp(`cannot read pipeline file ${join(process.cwd(), 'pipelines/card-risk.yaml')}`));
    } finally {
      delete process.env['VERDICT_PIPELINE'];
    }
    const daemon = await createDaemon(offline, { env: { VERDICT_PIPELINE: 'from-env.yaml' }, baseDir: dir });
    assert.match(await startError(daemon), new RegExp(`cannot read pipeline file ${join(dir, 'from-env.yaml')}`));
  });
});
