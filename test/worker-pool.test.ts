/**
 * The one worker pool (runtime/workers/worker-pool.ts): typed replies, the classification of Piscina's own
 * errors (a dead worker, a full queue, a closed pool), and the metrics channel, on real worker threads:
 * a protocol fixture, and the real inference worker behind the crashing fixture.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import {
  ActorStoppedError, MailboxFullError, ModelInputError, ModelTimeoutError, WorkerCrashedError,
} from '../core/errors.js';
import { createMetrics } from '../core/metrics.js';
import { packageRoot } from '../core/paths.js';
import { packRows } from '../models/tensors.js';
import type { TensorSpec } from '../models/types.js';
import { PiscinaRunner } from '../runtime/workers/piscina-runner.js';
import { WorkerPool } from '../runtime/workers/worker-pool.js';
import { CRASH_MARKER } from './fixtures/actors/crashing-worker.js';

const POOL_WORKER = new URL('./fixtures/workers/pool-worker.js', import.meta.url);
const CRASHING_WORKER = new URL('./fixtures/actors/crashing-worker.js', import.meta.url);

/** A pino logger whose lines land in `lines`, parsed. */
function capturingLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

const linear16Path = resolve(packageRoot, 'test/fixtures/actors/linear16.onnx');
const linear16: TensorSpec[] = [{ name: 'features', type: 'float32', shape: ['N', 16] }];
function batch(first: number) {
  return {
    modelPath: linear16Path,
    modelSha256: createHash('sha256').update(readFileSync(linear16Path)).digest('hex'),
    inputs: packRows(linear16, [{ features: [first, ...new Array<number>(15).fill(0)] }]),
    outputNames: ['probability'],
  };
}

/**
 * Asks until every worker has answered: a worker still loading its task file (onnxruntime takes a while on a
 * busy machine) has no channel yet and misses a request; it answers the next one.
 */
async function collectFromAll(pool: { collectMetrics(timeoutMs?: number): Promise<unknown[]> }, workers: number): Promise<unknown[]> {
  let answers: unknown[] = [];
  for (let attempt = 0; attempt < 30 && answers.length < workers; attempt++) answers = await pool.collectMetrics(1_000);
  return answers;
}

describe('worker pool', () => {
  const pools: Array<{ close(): Promise<void> }> = [];
  after(async () => {
    await Promise.all(pools.map((p) => p.close()));
  });

  test('a task resolves with its value, its input and output buffers moved across', async () => {
    const pool = new WorkerPool<Uint8Array, Uint8Array>({ kind: 'test', filename: POOL_WORKER, threads: 1, concurrentTasksPerWorker: 1, workerData: {} });
    pools.push(pool);
    const input = new Uint8Array([1, 2, 3]);
    const out = await pool.run(input, { transfer: [input.buffer] });
    assert.deepEqual([...out], [2, 4, 6]);
    assert.equal(input.byteLength, 0, 'the input buffer was transferred, not copied');
  });

  test('a typed error thrown in the worker arrives with its class, code and details', async () => {
    const pool = new WorkerPool<null, never>({ kind: 'test', filename: POOL_WORKER, threads: 1, concurrentTasksPerWorker: 1, workerData: {} });
    pools.push(pool);
    await assert.rejects(pool.run(null, { name: 'fail' }), (e: unknown) => {
      assert.ok(e instanceof ModelInputError);
      assert.equal(e.code, ModelInputError.code);
      assert.deepEqual(e.details, { row: 3 });
      return true;
    });
  });

  test('a full queue rejects with MailboxFullError', async () => {
    const pool = new WorkerPool<null, never>({ kind: 'test', filename: POOL_WORKER, threads: 1, maxQueue: 1, concurrentTasksPerWorker: 1, workerData: {} });
    try {
      // At most one task runs (and hangs) and one waits; the rest find the queue at its limit. Settled into
      // values at once, so no rejection goes unhandled while the test awaits.
      const runs = Array.from({ length: 6 }, () => pool.run(null, { name: 'hang' }).then(() => 'resolved', (e: unknown) => e));
      const full = await Promise.all(runs.slice(2));
      for (const reason of full) assert.ok(reason instanceof MailboxFullError, String(reason));
      await pool.destroy();
      // The accepted tasks end with the pool.
      const accepted = await Promise.all(runs.slice(0, 2));
      assert.ok(accepted[0] instanceof ActorStoppedError, String(accepted[0]));
      assert.ok(accepted[1] instanceof ActorStoppedError || accepted[1] instanceof MailboxFullError, String(accepted[1]));
    } finally {
      await pool.destroy();
    }
  });

  test('a pool closed under a task rejects it, and every later task, with ActorStoppedError', async () => {
    const metrics = createMetrics();
    const pool = new WorkerPool<Uint8Array | null, Uint8Array>({ kind: 'test', filename: POOL_WORKER, threads: 1, concurrentTasksPerWorker: 1, workerData: {}, metrics });
    await pool.run(new Uint8Array([1]));
    const running = assert.rejects(pool.run(null, { name: 'hang' }), ActorStoppedError);
    await pool.destroy();
    await running;
    await assert.rejects(pool.run(null), ActorStoppedError);
    const { values } = await metrics.workerRestarts.get();
    assert.equal(values[0]?.value ?? 0, 0, 'closing is not a crash');
  });

  test('a worker that dies under a task: WorkerCrashedError, one restart counted, a warning logged, the pool goes on', async () => {
    const metrics = createMetrics();
    const { logger, lines } = capturingLogger();
    const pool = new WorkerPool<Uint8Array | null, Uint8Array>({ kind: 'test', filename: POOL_WORKER, threads: 1, concurrentTasksPerWorker: 1, workerData: {}, metrics, logger });
    pools.push(pool);
    await assert.rejects(pool.run(null, { name: 'exit' }), WorkerCrashedError);
    assert.equal((await metrics.workerRestarts.get()).values[0]?.value, 1);
    const warning = lines.find((l) => l['level'] === 40);
    assert.ok(warning !== undefined, 'a warn line');
    assert.equal(warning['component'], 'test_pool');
    assert.deepEqual([...await pool.run(new Uint8Array([5]))], [10], 'the replaced worker runs the next task');
  });

  test('the real inference worker: a crash is WorkerCrashedError and counted; other batches still run', async () => {
    const metrics = createMetrics();
    const { logger, lines } = capturingLogger();
    const runner = new PiscinaRunner({ threads: 1, filename: CRASHING_WORKER, metrics, logger });
    pools.push(runner);
    await assert.rejects(runner.run(batch(CRASH_MARKER)), WorkerCrashedError);
    assert.equal((await metrics.workerRestarts.get()).values[0]?.value, 1);
    assert.ok(lines.some((l) => l['level'] === 40 && l['component'] === 'inference_pool'));
    const { outputs } = await runner.run(batch(0));
    assert.equal(outputs[0]?.name, 'probability');
  });

  test('the metrics channel: every worker answers with its own registry', async () => {
    const pool = new WorkerPool<Uint8Array, Uint8Array>({ kind: 'test', filename: POOL_WORKER, threads: 2, concurrentTasksPerWorker: 1, workerData: {} });
    pools.push(pool);
    await Promise.all(Array.from({ length: 4 }, () => pool.run(new Uint8Array([1]))));
    const workers = (await collectFromAll(pool, 2)) as Array<Array<{ name: string; values: Array<{ value: number }> }>>;
    assert.equal(workers.length, 2, 'one answer per worker thread');
    const events = workers.flat().filter((m) => m.name === 'verdict_events_in_total').flatMap((m) => m.values).reduce((n, v) => n + v.value, 0);
    assert.equal(events, 4, 'what the workers counted, summed');
  });

  test('a thread that dies keeps its counts: its counters as it last answered are summed into every later collection', async () => {
    const pool = new WorkerPool<Uint8Array | null, Uint8Array>({ kind: 'test', filename: POOL_WORKER, threads: 1, concurrentTasksPerWorker: 1, workerData: {} });
    pools.push(pool);
    const events = (answers: unknown[]): number => (answers as Array<Array<{ name: string; values: Array<{ value: number }> }>>)
      .flat().filter((m) => m.name === 'verdict_events_in_total').flatMap((m) => m.values).reduce((n, v) => n + v.value, 0);
    for (let i = 0; i < 3; i++) await pool.run(new Uint8Array([1]));
    assert.equal(events(await collectFromAll(pool, 1)), 3, 'the live thread counted 3');
    await assert.rejects(pool.run(null, { name: 'exit' }), WorkerCrashedError);
    await pool.run(new Uint8Array([1]));
    // The replacement may miss a request while it loads: ask until it has answered too.
    let answers: unknown[] = [];
    for (let attempt = 0; attempt < 30 && answers.length < 2; attempt++) answers = await pool.collectMetrics(1_000);
    assert.equal(answers.length, 2, 'the live thread, then the dead one\'s counts');
    assert.equal(events(answers), 4, 'the dead thread\'s 3 and the replacement\'s 1: the sum never goes back');
  });

  test('the control channel reaches every worker thread once; a typed error or a silent worker rejects', async () => {
    const pool = new WorkerPool<Uint8Array, Uint8Array>({ kind: 'test', filename: POOL_WORKER, threads: 3, concurrentTasksPerWorker: 1, workerData: {} });
    pools.push(pool);
    // Sent at once: threads still starting get it when it is resent.
    const replies = await pool.control<{ threadId: number; handled: number }>({ kind: 'echo' }, 20_000);
    assert.equal(new Set(replies.map((r) => r.threadId)).size, 3, 'one answer per thread');
    assert.deepEqual(replies.map((r) => r.handled), [1, 1, 1], 'each thread ran it once, however often it was sent');
    await assert.rejects(pool.control({ kind: 'fail' }), (e: unknown) => e instanceof ModelInputError && e.message === 'refused by the worker');
    await assert.rejects(pool.control({ kind: 'silent' }, 600), (e: unknown) => e instanceof ModelTimeoutError && /3 of 3 test workers did not answer within 600 ms/.test(e.message));
  });

  test('the inference workers answer on the same channel', async () => {
    const runner = new PiscinaRunner({ threads: 2 });
    pools.push(runner);
    await runner.run(batch(1));
    const workers = (await collectFromAll(runner, 2)) as Array<Array<{ name: string }>>;
    assert.equal(workers.length, 2);
    for (const registry of workers) assert.ok(registry.some((m) => m.name === 'verdict_worker_restarts_total'), 'a Verdict registry');
  });
});
