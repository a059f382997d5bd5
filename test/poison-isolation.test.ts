/**
 * Crash-loop isolation with real child processes and the real sample models: a record whose model batch
 * aborts the whole process (the `model.run` failpoint, SIGABRT) is found among its neighbours by running
 * them in groups and halves in child processes, and dead-lettered byte for byte with POISON_SUSPECTED; every
 * other record gets exactly the outcome normal processing gives it. A child stuck past its time bound is
 * killed and blamed the same way.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { preciseScheduler } from '../core/clock.js';
import { PoisonSuspectedError } from '../core/errors.js';
import { FAILPOINTS_ENV } from '../core/failpoints.js';
import { silentLogger } from '../core/log.js';
import { HEADER } from '../pipeline/encode-outcome.js';
import type { EncodedOutcome } from '../pipeline/outcome.js';
import type { InboundRecord } from '../pipeline/record.js';
import { Engine } from '../runtime/engine.js';
import { openCrashGuard } from '../runtime/crash-guard.js';
import { PoisonIsolation } from '../runtime/poison-isolation.js';
import { headerMap } from './helpers/headers.js';
import { relaxedTimeouts, samplePipeline, samplePipelinePath, transactions } from './helpers/pipelines.js';
import { stateStage } from './helpers/state-reads.js';

/** ip_risk is generated with two decimals: three never collide with a generated value, even as float32. */
const POISON = 0.123;

function records(n: number, poisonAt: number): InboundRecord[] {
  return transactions(n, 41).map(({ event }, i) => {
    const value = i === poisonAt ? { ...event, ip_risk: POISON } : event;
    return {
      topic: 'tx', partition: 2, offset: 100 + i, timestamp: 1_700_000_000_000 + i,
      key: Buffer.from(String(event['key'])), value: Buffer.from(JSON.stringify(value)),
      headers: [{ key: 'x-source', value: Buffer.from([0xff, 0x00, 0x41]) }],
    };
  });
}

/**
 * What must not depend on where a record ran: everything but the measured latencies, with numbers to 5
 * significant digits (onnxruntime's float sums differ in the last bits with the batch's size, and groups of
 * 8 batch differently from one block of 19).
 */
function essence(e: EncodedOutcome): unknown {
  const body = JSON.parse(e.output.value?.toString() ?? '{}', (_, v: unknown) => (typeof v === 'number' ? Number(v.toPrecision(5)) : v)) as Record<string, unknown>;
  delete body['latencyMs'];
  return { kind: e.kind, label: e.label, topic: e.output.topic, key: e.output.key?.toString(), body };
}

describe('poison isolation in child processes', { timeout: 120_000 }, () => {
  let engine: Engine;
  before(async () => {
    engine = await Engine.create(relaxedTimeouts(await samplePipeline()), { baseDir: dirname(samplePipelinePath) });
  });
  after(async () => { await engine.close(); });

  const isolation = (fault: object, options: { groupSize: number; childTimeoutMs: number }): PoisonIsolation => new PoisonIsolation({
    pipeline: engine.pipeline, ...options, clock: preciseScheduler, logger: silentLogger, logLevel: null,
    env: { ...process.env, [FAILPOINTS_ENV]: JSON.stringify({ 'model.run': fault }) },
  });

  test('the record that aborts its process is dead-lettered exactly; its neighbours get their normal outcomes', async (t) => {
    const input = records(20, 13);
    const states = stateStage(engine.pipeline)(input);
    const isolator = isolation({ action: 'abort', whenValue: POISON }, { groupSize: 8, childTimeoutMs: 60_000 });
    try {
      const result = await isolator.isolate(input, states, engine.bindings);
      t.diagnostic(`children started: ${result.children}`);
      assert.deepEqual(result.poison.map((r) => r.offset), [113]);
      assert.equal(result.encoded.length, input.length);

      const dead = result.encoded[13]!;
      assert.equal(dead.kind, 'dead-letter');
      assert.equal(dead.label, PoisonSuspectedError.code);
      assert.equal(dead.output.topic, engine.pipeline.output.deadLetter);
      assert.deepEqual(dead.output.key, input[13]!.key);
      assert.deepEqual(dead.output.value, input[13]!.value);
      const h = headerMap(dead.output.headers);
      assert.equal(h[HEADER.errorCode], PoisonSuspectedError.code);
      assert.match(String(h[HEADER.errorMessage]), /SIGABRT/);
      assert.equal(h[HEADER.sourceTopic], 'tx');
      assert.equal(h[HEADER.sourcePartition], '2');
      assert.equal(h[HEADER.sourceOffset], '113');
      assert.deepEqual(dead.output.headers[0], { key: 'x-source', value: Buffer.from([0xff, 0x00, 0x41]) }, 'the input\'s own header first, as it came');

      // The same records (the poison aside) processed normally, here, on the same state reads.
      const keep = input.map((_, i) => i).filter((i) => i !== 13);
      const normal = await engine.processBlock(keep.map((i) => input[i]!), engine.bindings, keep.map((i) => states?.[i]));
      assert.deepEqual(keep.map((i) => essence(result.encoded[i]!)), normal.map(essence));
      assert.ok(normal.every((e) => e.kind === 'decision'), 'every other record is decided');
    } finally {
      await isolator.close();
    }
  });

  test('a crash journal that cannot be written is off, and the daemon goes on without it', () => {
    // Under a regular file: no directory can be made there (ENOTDIR), as on a read-only file system.
    const file = join(mkdtempSync(join(tmpdir(), 'verdict-journal-')), 'file');
    writeFileSync(file, '');
    const config = { enabled: true, dir: join(file, 'crash-journal'), crashesBeforeIsolation: 2, groupSize: 8, childTimeoutMs: 1_000 };
    const open = (c: typeof config): unknown => openCrashGuard({
      config: c, groupId: 'g', pipeline: engine.pipeline, blockSize: 128, clock: preciseScheduler, logger: silentLogger, logLevel: null,
    });
    assert.equal(open(config), undefined);
    assert.equal(open({ ...config, enabled: false, dir: mkdtempSync(join(tmpdir(), 'verdict-journal-')) }), undefined);
  });

  test('a child stuck on a record past childTimeoutMs is killed, and the record blamed', async () => {
    const input = records(3, 1);
    const isolator = isolation({ action: 'delay', whenValue: POISON, ms: 120_000 }, { groupSize: 1, childTimeoutMs: 2_000 });
    try {
      const result = await isolator.isolate(input, stateStage(engine.pipeline)(input), engine.bindings);
      assert.deepEqual(result.poison.map((r) => r.offset), [101]);
      assert.deepEqual(result.encoded.map((e) => e.kind), ['decision', 'dead-letter', 'decision']);
      assert.match(String(headerMap(result.encoded[1]!.output.headers)[HEADER.errorMessage]), /SIGKILL/);
    } finally {
      await isolator.close();
    }
  });
});
