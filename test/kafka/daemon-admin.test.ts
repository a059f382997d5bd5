/**
 * The admin API of a real daemon (createDaemon in this process, the mock broker over TCP, block workers as
 * by default): status with assignment, lag, versions and breakers; the operator's pause holding while new
 * records wait (the lag shows them) and resume delivering them; models and promote on a copy of the
 * registry; the redacted config; `verdict admin` against it; and the API off without a token.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { createDaemon, type Daemon } from '../../index.js';
import { ModelSignatureError } from '../../core/errors.js';
import { packageRoot } from '../../core/paths.js';
import { ModelRegistry } from '../../models/registry.js';
import { uniqueTopic } from '../../mock-kafka/mock-broker.js';
import type { AdminStatus } from '../../runtime/admin/admin-target.js';
import { shippedModel, writeVersionByHand } from '../helpers/registry-copy.js';
import { daemonConfigObject, metricSum } from './helpers/daemon-process.js';
import { describeEachProducer, type TestProducerClient } from '../helpers/producers.js';
import { startHarness, type Harness } from './helpers/harness.js';
import { committedOffsets, createTopics, produce, total, transactionMessages, waitForCommittedToEnd } from './helpers/kafka-io.js';

const TOKEN = 'daemon-admin-test-token-7f3a9c';
const cli = resolve(packageRoot, 'dist/cli/main.js');
const run = promisify(execFile);

let h: Harness;

/** A daemon config on fresh topics and a private copy of the registry (promote writes to it). */
async function daemonConfig(name: string, admin: Record<string, unknown>, producer: TestProducerClient) {
  const topics = await createTopics(h.broker, name, 2);
  const groupId = uniqueTopic(`g-${name}`);
  const { dir, config } = daemonConfigObject({ producer, bootstrap: h.broker.bootstrap, groupId, topics, logLevel: 'silent' });
  const registry = join(dir, 'registry');
  cpSync(resolve(packageRoot, 'models/registry'), registry, { recursive: true });
  const pipelinePath = config.pipeline;
  const pipeline = parseYaml(readFileSync(pipelinePath, 'utf8')) as { models: { registry: string } };
  pipeline.models.registry = registry;
  writeFileSync(pipelinePath, stringifyYaml(pipeline));
  return { topics, groupId, registry, config: { ...config, admin } };
}

async function adminCall(daemon: Daemon, method: 'GET' | 'POST', path: string, body?: unknown, token: string | null = TOKEN) {
  const response = await fetch(`http://127.0.0.1:${daemon.adminPort}${path}`, {
    method,
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: await response.json() as Record<string, unknown> & { error?: { code: string } } };
}

const status = async (daemon: Daemon): Promise<AdminStatus> => (await adminCall(daemon, 'GET', '/admin/status')).body as unknown as AdminStatus;

/** `verdict admin …` as a user runs it (asynchronously: the daemon answering it lives in this process). */
async function verdictAdmin(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, 'admin', ...args], { env: { ...process.env, ...env }, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describeEachProducer('admin API on a running daemon', { timeout: 180_000 }, (producer) => {
  before(async () => { h = await startHarness('admin', 1); });
  after(async () => { await h.close(); });

  test('status, pause and resume, models, promote, config, and the CLI', { timeout: 150_000 }, async () => {
    // Its own listener: the admin host differs from the metrics host.
    const { topics, groupId, registry, config } = await daemonConfig('admin', { host: '127.0.0.1', port: 0 }, producer);
    const daemon = await createDaemon({ ...config, metrics: { host: 'localhost', port: 0 } }, { env: { VERDICT_ADMIN__TOKEN: TOKEN } });
    let stopped = false;
    try {
      await daemon.start();
      assert.ok(daemon.adminPort !== undefined && daemon.adminPort !== daemon.metricsPort, 'the admin API has its own port');
      const url = `http://127.0.0.1:${daemon.adminPort}`;

      // Refused without the token, over the real daemon too.
      assert.equal((await adminCall(daemon, 'GET', '/admin/status', undefined, null)).status, 401);
      assert.equal((await adminCall(daemon, 'POST', '/admin/pause', undefined, 'wrong-token-wrong-token')).status, 401);

      await produce(h.producer, topics.input, transactionMessages(40, 3));
      await waitForCommittedToEnd(h.admin, groupId, topics.input, 45_000);
      const running = await status(daemon);
      assert.equal(running.lifecycle, 'running');
      assert.equal(running.paused, false);
      assert.deepEqual(running.assignment.map((p) => p.partition).sort(), [0, 1]);
      assert.deepEqual(running.versions.steps.map((s) => `${s.step}=${s.roles[0]?.ref}`),
        ['gbt=fraud_gbt@3', 'anomaly=txn_autoencoder@2', 'mlp=fraud_mlp@2']);
      for (const ref of ['fraud_gbt@3', 'txn_autoencoder@2']) {
        const breaker = running.breakers.find((b) => b.model === ref);
        assert.equal(breaker?.state, 'closed', `${ref}'s breaker is reported (from the block workers)`);
      }

      // Pause through the CLI; records produced meanwhile wait, and the lag says how many.
      const paused = await verdictAdmin(['pause', '--url', url], { VERDICT_ADMIN_TOKEN: TOKEN });
      assert.equal(paused.code, 0, paused.stderr);
      assert.match(paused.stdout, /consumption paused \(2 partitions assigned\)/);
      const committedBefore = total(await committedOffsets(h.admin, groupId, topics.input));
      await produce(h.producer, topics.input, transactionMessages(30, 4));
      let seen: AdminStatus | undefined;
      await (async () => {
        // The daemon samples lag every 5 s: wait for a sample that sees the 30 waiting records.
        const deadline = Date.now() + 30_000;
        for (;;) {
          seen = await status(daemon);
          if (seen.assignment.reduce((a, p) => a + (p.lag ?? 0), 0) === 30) return;
          if (Date.now() > deadline) throw new Error(`lag never reached 30: ${JSON.stringify(seen.assignment)}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      })();
      assert.equal(seen?.paused, true);
      assert.ok(seen?.lagAgeMs !== null && seen !== undefined && seen.lagAgeMs >= 0 && seen.lagAgeMs < 60_000, `lag age ${seen?.lagAgeMs} ms`);
      assert.equal(total(await committedOffsets(h.admin, groupId, topics.input)), committedBefore, 'nothing consumed while paused');
      const metrics = await (await fetch(`http://localhost:${daemon.metricsPort}/metrics`)).text();
      assert.equal(metricSum(metrics, 'verdict_events_in_total'), 40, 'no event read while paused');
      assert.match(metrics, /verdict_admin_requests_total\{endpoint="pause",status="200"\} 1/);

      const resumed = await adminCall(daemon, 'POST', '/admin/resume');
      assert.deepEqual(resumed.body, { paused: false, changed: true, partitions: 2 });
      await waitForCommittedToEnd(h.admin, groupId, topics.input, 45_000);
      assert.equal((await status(daemon)).paused, false);

      // Models: the registry, with who uses what; promote moves the alias in the daemon's registry.
      const models = await adminCall(daemon, 'GET', '/admin/models');
      const gbt = (models.body['models'] as Array<{ name: string; inUse: unknown[] }>).find((m) => m.name === 'fraud_gbt');
      assert.deepEqual(gbt?.inUse, [{ step: 'gbt', role: 'primary', ref: 'fraud_gbt@3' }]);
      assert.equal((await adminCall(daemon, 'POST', '/admin/models/nobody/promote', { version: 1 })).body.error?.code, 'MODEL_NOT_FOUND');
      const noVersion = await adminCall(daemon, 'POST', '/admin/models/fraud_gbt/promote', { version: 9 });
      assert.equal(noVersion.status, 400);
      assert.equal(noVersion.body.error?.code, 'ADMIN_BAD_REQUEST');
      const promoted = await verdictAdmin(['promote', 'fraud_gbt', '4', '--url', url, '--token', TOKEN, '--json']);
      assert.equal(promoted.code, 0, promoted.stderr);
      const promotedBody = JSON.parse(promoted.stdout) as { change: { from: number; to: number }; swaps: Array<{ step: string; from: string; to: string; ok: boolean }> };
      assert.deepEqual(promotedBody.change.to, 4);
      // The promote swapped live: the daemon runs fraud_gbt@4 for new blocks when it answers.
      assert.deepEqual(promotedBody.swaps.map((w) => [w.step, w.from, w.to, w.ok]), [['gbt', 'fraud_gbt@3', 'fraud_gbt@4', true]]);
      assert.equal((await status(daemon)).versions.steps.find((v) => v.step === 'gbt')?.roles[0]?.ref, 'fraud_gbt@4');
      const aliases = JSON.parse(readFileSync(join(registry, 'fraud_gbt', 'aliases.json'), 'utf8')) as { aliases: Record<string, number> };
      assert.equal(aliases.aliases['production'], 4, 'the alias moved in the registry the daemon reads');
      const rolledBack = await adminCall(daemon, 'POST', '/admin/models/fraud_gbt/rollback', {});
      assert.equal(rolledBack.status, 200);
      const back = rolledBack.body['change'] as { from: number; to: number };
      assert.deepEqual([back.from, back.to], [4, 3]);
      assert.equal((await status(daemon)).versions.steps.find((v) => v.step === 'gbt')?.roles[0]?.ref, 'fraud_gbt@3');
      // A version whose manifest lies about the model: the registry refuses to move the alias to it (409 with
      // the model's code), so the daemon never even tries it.
      await writeVersionByHand(registry, 'fraud_gbt', 5, { modelFile: shippedModel('txn_autoencoder', 2), manifestOf: { name: 'fraud_gbt', version: 4 }, sha256: 'honest' });
      const lying = await adminCall(daemon, 'POST', '/admin/models/fraud_gbt/promote', { version: 5 });
      assert.equal(lying.status, 409);
      assert.equal(lying.body.error?.code, ModelSignatureError.code);
      assert.equal((JSON.parse(readFileSync(join(registry, 'fraud_gbt', 'aliases.json'), 'utf8')) as { aliases: Record<string, number> }).aliases['production'], 3);
      // An honest version this pipeline's step cannot use (the autoencoder's signature): the alias moves, the
      // swap is refused (409 ADMIN_CONFLICT), the old version keeps serving, and the status says why.
      const other = await new ModelRegistry(registry).register('fraud_gbt', shippedModel('txn_autoencoder', 2));
      const refused = await adminCall(daemon, 'POST', '/admin/models/fraud_gbt/promote', { version: other.version });
      assert.equal(refused.status, 409);
      assert.equal(refused.body.error?.code, 'ADMIN_CONFLICT');
      const gbtRole = (await status(daemon)).versions.steps.find((v) => v.step === 'gbt')?.roles[0];
      assert.equal(gbtRole?.ref, 'fraud_gbt@3');
      assert.deepEqual([gbtRole?.refused?.ref, gbtRole?.refused?.code], [other.ref, ModelSignatureError.code]);
      await adminCall(daemon, 'POST', '/admin/models/fraud_gbt/rollback', {});
      // fraud_mlp's canary alias has never moved (its production alias has: v1 -> v2 at the retrain).
      const noHistory = await adminCall(daemon, 'POST', '/admin/models/fraud_mlp/rollback', { alias: 'canary' });
      assert.equal(noHistory.status, 400, 'no earlier version to roll back to');

      // The config, redacted; and the CLI's refusals.
      const shown = await verdictAdmin(['config', '--url', url, '--json'], { VERDICT_ADMIN__TOKEN: TOKEN }); // the daemon's own variable
      assert.equal(shown.code, 0, shown.stderr);
      assert.ok(!shown.stdout.includes(TOKEN), 'the token is never shown');
      assert.match(shown.stdout, /"token": "\[redacted\]"/);
      const wrong = await verdictAdmin(['status', '--url', url, '--token', 'not-the-token-at-all']);
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /^error ADMIN_UNAUTHORIZED: wrong bearer token \(HTTP 401\)/);
      const human = await verdictAdmin(['status', '--url', url], { VERDICT_ADMIN_TOKEN: TOKEN });
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /lifecycle\s+running/);
      assert.match(human.stdout, /gbt\s+primary\s+fraud_gbt@production\s+fraud_gbt@3/);

      const report = await daemon.stop();
      stopped = true;
      assert.deepEqual(report, { drained: true, abandoned: 0 });
      const gone = await verdictAdmin(['status', '--url', url], { VERDICT_ADMIN_TOKEN: TOKEN });
      assert.equal(gone.code, 1);
      assert.match(gone.stderr, /^error TRANSPORT_FAILED: cannot reach the admin API/);
    } finally {
      if (!stopped) await daemon.stop();
    }
  });

  test('without a token the admin API is off: 403 on the metrics endpoint, no listener of its own', { timeout: 100_000 }, async () => {
    const { config } = await daemonConfig('admin-off', { host: '127.0.0.1', port: 0 }, producer);
    const daemon = await createDaemon(config);
    try {
      await daemon.start();
      assert.equal(daemon.adminPort, undefined);
      for (const token of [TOKEN, null]) {
        const response = await fetch(`http://127.0.0.1:${daemon.metricsPort}/admin/pause`, {
          method: 'POST', headers: token === null ? {} : { authorization: `Bearer ${token}` },
        });
        assert.equal(response.status, 403);
        assert.equal(((await response.json()) as { error: { code: string } }).error.code, 'ADMIN_DISABLED');
      }
      assert.equal((await fetch(`http://127.0.0.1:${daemon.metricsPort}/readyz`)).status, 200, 'the metrics endpoint is otherwise as it was');
    } finally {
      await daemon.stop();
    }
  });
});
