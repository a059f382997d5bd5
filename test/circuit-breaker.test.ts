/**
 * The per-model circuit breaker on virtual time: the state machine alone, then inside a model actor (a fake
 * runner), and the step executor's abort path that withdraws rows a timed-out step no longer needs.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CircuitBreaker, type CircuitTransition } from '../actors/circuit-breaker.js';
import { ModelActor } from '../actors/model-actor.js';
import { circuitBreakerSchema } from '../config/pipeline-schema.js';
import { ModelCircuitOpenError, ModelExecutionError, ModelTimeoutError, WorkerCrashedError } from '../core/errors.js';
import { createMetrics } from '../core/metrics.js';
import { stepExecutor } from '../runtime/step-executor.js';
import { FakeRunner, errorCount, model, settle, setup } from './helpers/fake-runner.js';
import { ManualScheduler } from './helpers/manual-scheduler.js';

function breaker(failureThreshold = 3, coolDownMs = 1000) {
  const scheduler = new ManualScheduler();
  const transitions: CircuitTransition[] = [];
  const b = new CircuitBreaker({ failureThreshold, coolDownMs }, scheduler, (t) => transitions.push(t));
  return { b, scheduler, transitions, moves: () => transitions.map((t) => `${t.from}->${t.to}`) };
}

describe('circuit breaker state machine', () => {
  test('the schema holds the defaults: 5 failures, 5,000 ms', () => {
    assert.deepEqual(circuitBreakerSchema.parse({}), { failureThreshold: 5, coolDownMs: 5000 });
    assert.throws(() => circuitBreakerSchema.parse({ failureThreshold: 0 }));
  });

  test('opens after N consecutive failures; a success in between resets the count', () => {
    const { b, moves, transitions } = breaker(3);
    b.failure();
    b.failure();
    b.success();
    b.failure();
    b.failure();
    assert.equal(b.state, 'closed');
    assert.equal(b.failures, 2);
    b.failure();
    assert.equal(b.state, 'open');
    assert.deepEqual(moves(), ['closed->open']);
    assert.equal(transitions[0]?.failures, 3);
    assert.equal(b.accepting, false);
    assert.equal(b.tryRun(), false);
  });

  test('stays open for the cool-down, then half-open lets exactly one probe through; its success closes it', () => {
    const { b, scheduler, moves } = breaker(1, 1000);
    b.failure();
    scheduler.advance(999);
    assert.equal(b.state, 'open');
    assert.equal(b.accepting, false);
    scheduler.advance(1);
    assert.equal(b.state, 'half-open');
    assert.equal(b.accepting, true);
    assert.equal(b.tryRun(), true, 'the probe');
    assert.equal(b.tryRun(), false, 'a second batch while the probe is out');
    assert.equal(b.accepting, false, 'no new rows queue while the probe is out');
    b.success();
    assert.equal(b.state, 'closed');
    assert.equal(b.failures, 0);
    assert.equal(b.tryRun(), true);
    assert.deepEqual(moves(), ['closed->open', 'open->half-open', 'half-open->closed']);
  });

  test('a failed probe re-opens it for another full cool-down', () => {
    const { b, scheduler, moves } = breaker(2, 500);
    b.failure();
    b.failure();
    scheduler.advance(500);
    assert.equal(b.tryRun(), true);
    b.failure();
    assert.equal(b.state, 'open');
    scheduler.advance(499);
    assert.equal(b.state, 'open');
    scheduler.advance(1);
    assert.equal(b.state, 'half-open');
    assert.deepEqual(moves(), ['closed->open', 'open->half-open', 'half-open->open', 'open->half-open']);
  });

  test('a probe that ends neither way frees the probe slot; a success while open does not close it', () => {
    const { b, scheduler } = breaker(1, 100);
    b.failure();
    b.success();
    assert.equal(b.state, 'open', 'a batch that was already running proves nothing about the cool-down');
    scheduler.advance(100);
    assert.equal(b.tryRun(), true);
    b.neutral();
    assert.equal(b.state, 'half-open');
    assert.equal(b.tryRun(), true, 'the next batch is the probe');
  });
});

describe('circuit breaker in a model actor', () => {
  test('consecutive failed batches open it; rows are then refused at once without running; gauge and counter follow', async () => {
    const scheduler = new ManualScheduler();
    const runner = new FakeRunner();
    const metrics = createMetrics();
    const actor = new ModelActor({ model, runner, scheduler, metrics, maxDelayMs: 1, circuitBreaker: { failureThreshold: 2, coolDownMs: 1000 } });
    const state = async () => (await metrics.circuitState.get()).values.find((v) => v.labels['model'] === 'fake@1')?.value;
    assert.equal(await state(), 0);
    for (let i = 0; i < 2; i++) {
      // The row's thread dies on the batch and on its retry: a failed batch.
      runner.failNext.push(new WorkerCrashedError('died'), new WorkerCrashedError('died again'));
      const row = actor.infer({ x: [1, 2] });
      scheduler.advance(1);
      await assert.rejects(row, WorkerCrashedError);
    }
    assert.equal(actor.circuitState, 'open');
    assert.equal(await state(), 1);
    const calls = runner.calls.length;
    await assert.rejects(actor.infer({ x: [1, 2] }), ModelCircuitOpenError);
    assert.equal(actor.queued, 0, 'not queued');
    scheduler.advance(5);
    await settle();
    assert.equal(runner.calls.length, calls, 'no work reached the runner');
    assert.equal(await errorCount(metrics, ModelCircuitOpenError.code), 1);

    // After the cool-down the next row is the probe; its success closes the breaker.
    scheduler.advance(1000);
    const probe = actor.infer({ x: [3, 4] });
    assert.equal(actor.circuitState, 'half-open');
    assert.equal(await state(), 2);
    scheduler.advance(1);
    assert.equal((await probe)['sum'], 7);
    assert.equal(actor.circuitState, 'closed');
    assert.equal(await state(), 0);
    const transitions = (await metrics.circuitTransitions.get()).values.map((v) => [v.labels['to'], v.value]);
    assert.deepEqual(transitions.sort(), [['closed', 1], ['half-open', 1], ['open', 1]]);
  });

  test('a batch with a poison row does not count as failed: its neighbours got outputs', async () => {
    const { actor, runner, advanceTo } = setup({ circuitBreaker: { failureThreshold: 1, coolDownMs: 1000 } });
    runner.failNext.push(new ModelExecutionError('bad row'));
    const rows = [actor.infer({ x: [1, 1] }), actor.infer({ x: [2, 2] })];
    advanceTo(2);
    await Promise.allSettled(rows);
    assert.equal(actor.circuitState, 'closed');
  });

  test('step timeouts count: the executor tells the actor', async () => {
    const { actor, runner, scheduler, advanceTo } = setup({ circuitBreaker: { failureThreshold: 2, coolDownMs: 1000 } });
    runner.hold = true;
    const execute = stepExecutor(actor, scheduler, 10, true);
    const first = execute.infer([{ x: [1, 1] }]);
    advanceTo(10);
    assert.equal((await first).errors[0]?.code, ModelTimeoutError.code);
    assert.equal(actor.circuitState, 'closed');
    const second = execute.infer([{ x: [2, 2] }]);
    advanceTo(20);
    await second;
    assert.equal(actor.circuitState, 'open');
  });
});

describe('a step timeout withdraws the rows that have not run', () => {
  test('queued rows leave the batcher, never reach the runner, and are counted; running rows finish', async () => {
    const scheduler = new ManualScheduler();
    const runner = new FakeRunner();
    runner.hold = true;
    const metrics = createMetrics();
    // One batch in flight at a time, two rows per batch: of six rows, two run and four wait in the mailbox.
    const actor = new ModelActor({ model, runner, scheduler, metrics, maxBatchSize: 2, maxDelayMs: 1, maxInflightBatches: 1 });
    const execute = stepExecutor(actor, scheduler, 50, true);
    const rows = Array.from({ length: 6 }, (_, i) => ({ x: [i, i] }));
    const result = execute.infer(rows);
    scheduler.advance(1);
    assert.deepEqual(runner.calls, [2]);
    assert.equal(actor.queued, 4);
    scheduler.advance(49);
    const settled = await result;
    assert.deepEqual(settled.errors.map((e) => e?.code), new Array(6).fill(ModelTimeoutError.code));
    assert.equal(actor.queued, 0, 'withdrawn from the mailbox');
    const withdrawn = (await metrics.rowsWithdrawn.get()).values.find((v) => v.labels['model'] === 'fake@1')?.value;
    assert.equal(withdrawn, 4);
    // The running batch finishes; nothing withdrawn is dispatched after it.
    for (const release of runner.held.splice(0)) release();
    await settle();
    scheduler.advance(10);
    await settle();
    assert.deepEqual(runner.calls, [2]);
  });

  test('bounded by the join deadline, the call settles with the actor, its withdrawn rows as timeouts', async () => {
    const scheduler = new ManualScheduler();
    const runner = new FakeRunner();
    runner.hold = true;
    const metrics = createMetrics();
    const actor = new ModelActor({ model, runner, scheduler, metrics, maxBatchSize: 1, maxDelayMs: 0, maxInflightBatches: 1 });
    const execute = stepExecutor(actor, scheduler, 100, false);
    const result = execute.infer([{ x: [1, 1] }, { x: [2, 2] }, { x: [3, 3] }]);
    scheduler.advance(0);
    assert.deepEqual(runner.calls, [1]);
    scheduler.advance(100);
    assert.equal(actor.queued, 0);
    for (const release of runner.held.splice(0)) release();
    const settled = await result;
    assert.equal(settled.outputs[0]?.['sum'], 2, 'the row that was running keeps its result');
    assert.deepEqual(settled.errors.slice(1).map((e) => e?.code), [ModelTimeoutError.code, ModelTimeoutError.code]);
    assert.equal((await metrics.rowsWithdrawn.get()).values[0]?.value, 2);
    assert.deepEqual(runner.calls, [1]);
  });
});
