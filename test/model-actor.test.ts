import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualTimeScheduler } from 'rxjs';
import {
  AbortedError, ActorStoppedError, MailboxFullError, ModelExecutionError, ModelInputError, ModelNotFoundError,
  VerdictError, WorkerCrashedError,
} from '../core/errors.js';
import { createMetrics, type Metrics } from '../core/metrics.js';
import { ModelActor, type ModelActorOptions } from '../actors/model-actor.js';
import type { ActorStatus } from '../actors/actor.js';
import type { BatchResult, BatchTask, ModelRunner } from '../models/runner.js';
import type { ResolvedModel } from '../models/types.js';

const model: ResolvedModel = {
  name: 'fake', version: 1, ref: 'fake@1', path: '/models/fake/1/model.onnx',
  manifest: {
    name: 'fake', version: 1, description: 'sum and double', createdAt: '2024-01-01T00:00:00Z', sha256: 'abc',
    inputs: [{ name: 'x', type: 'float32', shape: ['N', 2] }],
    outputs: [{ name: 'sum', type: 'float32', shape: ['N', 1] }, { name: 'double', type: 'float32', shape: ['N', 2] }],
    metrics: {},
  },
};

const POISON = -1;

/**
 * Computes sum and double of each row. Fails any batch holding a POISON row, throws queued errors first,
 * and in `hold` mode keeps each batch running until the test releases it.
 */
class FakeRunner implements ModelRunner {
  readonly calls: number[] = [];
  readonly failNext: VerdictError[] = [];
  hold = false;
  readonly held: (() => void)[] = [];

  async run(task: BatchTask): Promise<BatchResult> {
    const input = task.inputs[0]!;
    const n = input.dims[0]!;
    this.calls.push(n);
    const failure = this.failNext.shift();
    if (failure !== undefined) throw failure;
    if (this.hold) await new Promise<void>((resolve) => this.held.push(resolve));
    const x = input.data as Float32Array;
    const sum = new Float32Array(n);
    const double = new Float32Array(n * 2);
    for (let r = 0; r < n; r++) {
      if (x[r * 2] === POISON) throw new ModelExecutionError('poison row');
      sum[r] = x[r * 2]! + x[r * 2 + 1]!;
      double[r * 2] = x[r * 2]! * 2;
      double[r * 2 + 1] = x[r * 2 + 1]! * 2;
    }
    return {
      outputs: [
        { name: 'sum', type: 'float32', dims: [n, 1], data: sum },
        { name: 'double', type: 'float32', dims: [n, 2], data: double },
      ],
    };
  }

  async close(): Promise<void> {}
}

function setup(options: Partial<ModelActorOptions> = {}) {
  const scheduler = new VirtualTimeScheduler();
  const runner = new FakeRunner();
  const metrics = createMetrics();
  const actor = new ModelActor({ model, runner, scheduler, metrics, ...options });
  /** Runs the timers due up to virtual time `t`. */
  const advanceTo = (t: number) => {
    scheduler.maxFrames = t;
    scheduler.flush();
  };
  return { scheduler, runner, metrics, actor, advanceTo };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

async function errorCount(metrics: Metrics, code: string): Promise<number> {
  const { values } = await metrics.errors.get();
  return values.find((v) => v.labels['component'] === 'model_actor' && v.labels['code'] === code)?.value ?? 0;
}

void test('dispatches one batch as soon as maxBatchSize rows are queued', async () => {
  const { actor, runner } = setup({ maxBatchSize: 64 });
  const results = Array.from({ length: 64 }, (_, i) => actor.infer({ x: [i, 1] }));
  assert.deepEqual(runner.calls, [64]);
  assert.equal(actor.queued, 0);
  const outputs = await Promise.all(results);
  assert.equal(outputs[10]!['sum'], 11);
});

void test('waits maxDelayMs of virtual time, then dispatches the partial batch once', async () => {
  const { actor, runner, advanceTo } = setup({ maxBatchSize: 64, maxDelayMs: 2 });
  const results = [actor.infer({ x: [1, 1] }), actor.infer({ x: [2, 2] }), actor.infer({ x: [3, 3] })];
  advanceTo(1);
  await settle();
  assert.deepEqual(runner.calls, []);
  assert.equal(actor.queued, 3);
  advanceTo(2);
  assert.deepEqual(runner.calls, [3]);
  assert.deepEqual((await Promise.all(results)).map((o) => o['sum']), [2, 4, 6]);
});

void test('routes each output back to the caller whose row produced it', async () => {
  const { actor, advanceTo } = setup({ maxBatchSize: 8 });
  const rows = [[1, 2], [10, 20], [-5, 5], [0.5, 0.25]];
  const results = rows.map((x) => actor.infer({ x }));
  advanceTo(2);
  const outputs = await Promise.all(results);
  assert.deepEqual(outputs, [
    { sum: 3, double: [2, 4] },
    { sum: 30, double: [20, 40] },
    { sum: 0, double: [-10, 10] },
    { sum: 0.75, double: [1, 0.5] },
  ]);
});

void test('rejects at once with a retryable MailboxFullError when the mailbox is full, and counts it', async () => {
  const { actor, metrics, advanceTo } = setup({ mailboxCapacity: 2 });
  const accepted = [actor.infer({ x: [1, 1] }), actor.infer({ x: [2, 2] })];
  await assert.rejects(actor.infer({ x: [3, 3] }), (e: unknown) => e instanceof MailboxFullError && e.retryable);
  assert.equal(await errorCount(metrics, MailboxFullError.code), 1);
  advanceTo(2);
  assert.equal((await Promise.all(accepted)).length, 2);
});

void test('isolates a poison row by bisection so only that row rejects', async () => {
  const { actor, runner, metrics, advanceTo } = setup({ maxBatchSize: 8 });
  const results = Array.from({ length: 8 }, (_, i) => actor.infer({ x: [i === 5 ? POISON : i, 1] }));
  advanceTo(2);
  const settled = await Promise.allSettled(results);
  const rejected = settled.flatMap((s, i) => (s.status === 'rejected' ? [i] : []));
  assert.deepEqual(rejected, [5]);
  const failure = settled[5] as PromiseRejectedResult;
  assert.ok(failure.reason instanceof ModelExecutionError);
  assert.equal((settled[4] as PromiseFulfilledResult<Record<string, unknown>>).value['sum'], 5);
  // Depth first: 8 fails; rows 0-3 pass; 4-7 fail; 4-5 fail; 4 passes; 5 fails alone; 6-7 pass.
  assert.deepEqual(runner.calls, [8, 4, 4, 2, 1, 1, 2]);
  assert.equal(await errorCount(metrics, ModelExecutionError.code), 1);
});

void test('retries a retryable failure once for the whole batch', async () => {
  const { actor, runner, advanceTo } = setup();
  runner.failNext.push(new WorkerCrashedError('worker died'));
  const results = [actor.infer({ x: [1, 2] }), actor.infer({ x: [3, 4] })];
  advanceTo(2);
  assert.deepEqual((await Promise.all(results)).map((o) => o['sum']), [3, 7]);
  assert.deepEqual(runner.calls, [2, 2]);
});

void test('rejects the whole batch with the typed error when the retry fails too', async () => {
  const { actor, runner, metrics, advanceTo } = setup();
  runner.failNext.push(new WorkerCrashedError('worker died'), new WorkerCrashedError('worker died again'));
  const results = [actor.infer({ x: [1, 2] }), actor.infer({ x: [3, 4] })];
  advanceTo(2);
  for (const result of results) await assert.rejects(result, WorkerCrashedError);
  assert.deepEqual(runner.calls, [2, 2]);
  assert.equal(await errorCount(metrics, WorkerCrashedError.code), 2);
});

void test('removes a row aborted before dispatch and rejects it without running it', async () => {
  const { actor, runner, metrics, advanceTo } = setup();
  const controller = new AbortController();
  const kept = actor.infer({ x: [1, 1] });
  const aborted = actor.infer({ x: [2, 2] }, controller.signal);
  const alsoKept = actor.infer({ x: [3, 3] });
  controller.abort();
  await assert.rejects(aborted, AbortedError);
  assert.equal(actor.queued, 2);
  advanceTo(2);
  assert.deepEqual(runner.calls, [2]);
  assert.deepEqual([(await kept)['sum'], (await alsoKept)['sum']], [2, 6]);
  await assert.rejects(actor.infer({ x: [4, 4] }, AbortSignal.abort()), AbortedError);
  assert.equal(await errorCount(metrics, AbortedError.code), 2);
});

void test('rejects a row of the wrong length before queuing it', async () => {
  const { actor, runner } = setup();
  await assert.rejects(actor.infer({ x: [1, 2, 3] }), ModelInputError);
  assert.equal(actor.queued, 0);
  assert.deepEqual(runner.calls, []);
});

void test('keeps at most maxInflightBatches batches running and dispatches more as they finish', async () => {
  const { actor, runner } = setup({ maxBatchSize: 2, maxInflightBatches: 2 });
  runner.hold = true;
  const results = Array.from({ length: 8 }, (_, i) => actor.infer({ x: [i, 0] }));
  assert.deepEqual(runner.calls, [2, 2]);
  assert.equal(actor.queued, 4);
  runner.held.shift()!();
  await settle();
  assert.deepEqual(runner.calls, [2, 2, 2]);
  runner.hold = false;
  for (const release of runner.held.splice(0)) release();
  assert.deepEqual((await Promise.all(results)).map((o) => o['sum']), [0, 1, 2, 3, 4, 5, 6, 7]);
});

void test('stop runs the queued rows without waiting for the delay, then rejects new rows', async () => {
  const { actor, runner } = setup({ maxDelayMs: 1000 });
  const statuses: ActorStatus[] = [];
  actor.status$.subscribe((s) => statuses.push(s));
  const queued = [actor.infer({ x: [1, 1] }), actor.infer({ x: [2, 2] })];
  const stopped = actor.stop();
  assert.equal(actor.status, 'draining');
  assert.deepEqual(runner.calls, [2]);
  await assert.rejects(actor.infer({ x: [3, 3] }), ActorStoppedError);
  await stopped;
  assert.equal(actor.status, 'stopped');
  assert.deepEqual((await Promise.all(queued)).map((o) => o['sum']), [2, 4]);
  assert.deepEqual(statuses, ['starting', 'draining', 'stopped']);
  await assert.rejects(actor.infer({ x: [1, 1] }), ActorStoppedError);
});

void test('start warms the model with one zero row and reports running', async () => {
  const { actor, runner } = setup();
  assert.equal(actor.status, 'starting');
  await actor.start();
  assert.equal(actor.status, 'running');
  assert.deepEqual(runner.calls, [1]);
});

void test('fails the actor and its waiting rows when the model cannot be loaded', async () => {
  const { actor, runner, advanceTo } = setup();
  runner.failNext.push(new ModelNotFoundError('no such model'));
  const results = [actor.infer({ x: [1, 1] }), actor.infer({ x: [2, 2] })];
  advanceTo(2);
  for (const result of results) await assert.rejects(result, ModelNotFoundError);
  assert.deepEqual(runner.calls, [2]);
  assert.equal(actor.status, 'failed');
  await assert.rejects(actor.infer({ x: [1, 1] }), ActorStoppedError);
});

void test('does not bisect an error that no single row can cause', async () => {
  const { actor, runner, advanceTo } = setup();
  runner.failNext.push(new ActorStoppedError('pool closed'));
  const results = Array.from({ length: 4 }, (_, i) => actor.infer({ x: [i, 0] }));
  advanceTo(2);
  for (const result of results) await assert.rejects(result, ActorStoppedError);
  assert.deepEqual(runner.calls, [4]);
  assert.equal(actor.status, 'starting');
});
