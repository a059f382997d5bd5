import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AbortedError, ActorStoppedError, MailboxFullError, ModelExecutionError, ModelInputError, ModelNotFoundError,
  WorkerCrashedError,
} from '../core/errors.js';
import type { LifecycleState } from '../core/lifecycle.js';
import { errorCount, POISON, settle, setup } from './helpers/fake-runner.js';
import { ManualScheduler } from './helpers/manual-scheduler.js';

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

void test('rejects the whole batch with the typed error when the retry fails too and no row can cause it', async () => {
  const { actor, runner, metrics, advanceTo } = setup();
  runner.failNext.push(new MailboxFullError('pool queue full'), new MailboxFullError('pool queue still full'));
  const results = [actor.infer({ x: [1, 2] }), actor.infer({ x: [3, 4] })];
  advanceTo(2);
  for (const result of results) await assert.rejects(result, MailboxFullError);
  assert.deepEqual(runner.calls, [2, 2]);
  assert.equal(await errorCount(metrics, MailboxFullError.code), 2);
});

// The failure policy (README "When a model fails"): a thread that dies on the retry too is treated as
// a row's fault, so the batch is bisected and only the row whose run crashes gets MODEL_WORKER_CRASHED.
void test('a worker crash that survives the retry is bisected: the crashing row fails alone, its neighbour gets outputs', async () => {
  const { actor, runner, metrics, advanceTo } = setup();
  runner.failNext.push(new WorkerCrashedError('worker died'), new WorkerCrashedError('worker died again'), new WorkerCrashedError('died on row 0'));
  const results = [actor.infer({ x: [1, 2] }), actor.infer({ x: [3, 4] })];
  advanceTo(2);
  await assert.rejects(results[0]!, WorkerCrashedError);
  assert.equal((await results[1]!)['sum'], 7);
  // Two attempts of the batch, then each half once, without a further retry.
  assert.deepEqual(runner.calls, [2, 2, 1, 1]);
  assert.equal(await errorCount(metrics, WorkerCrashedError.code), 1);
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
  const statuses: LifecycleState[] = [];
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

void test('start warms the model with one zero row and one full batch, then reports running', async () => {
  const { actor, runner } = setup({ maxBatchSize: 16 });
  assert.equal(actor.status, 'starting');
  await actor.start();
  assert.equal(actor.status, 'running');
  assert.deepEqual(runner.calls, [1, 16]);
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

void test('queue wait: one observation per queued run of rows, from its offer until its last row is dispatched', async () => {
  const clock = new ManualScheduler();
  const { actor, runner, metrics } = setup({ maxBatchSize: 4, maxDelayMs: 5, maxInflightBatches: 1, scheduler: clock });
  runner.hold = true;
  // Three rows at t=0 and three at t=3: a full batch at once (t=3) takes the first block and one row of
  // the second, whose last two rows leave the mailbox only when the first batch is done (t=9).
  const first = actor.inferBlock([{ x: [1, 1] }, { x: [2, 2] }, { x: [3, 3] }]);
  clock.advance(3);
  const second = actor.inferBlock([{ x: [4, 4] }, { x: [5, 5] }, { x: [6, 6] }]);
  assert.deepEqual(runner.calls, [4]);
  clock.advance(6);
  runner.hold = false;
  runner.held.shift()!();
  await first;
  await second;
  assert.deepEqual(runner.calls, [4, 2]);
  const values = (await metrics.queueWait.get()).values;
  const count = values.find((v) => v.metricName === 'verdict_model_queue_wait_seconds_count');
  const sum = values.find((v) => v.metricName === 'verdict_model_queue_wait_seconds_sum');
  assert.equal(count?.value, 2, 'one per queued block, not per row or batch');
  assert.equal(count?.labels['model'], 'fake@1');
  assert.equal(Math.round((sum?.value ?? 0) * 1e6), 9_000, 'the first waited 3 ms (t=0 to 3), the second 6 ms (t=3 to 9)');
});
