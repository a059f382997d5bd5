import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NEVER, concat, of, type SchedulerAction } from 'rxjs';
import { nextTurn, preciseScheduler, sleep } from '../core/clock.js';
import type { InboundRecord } from '../pipeline/record.js';
import { Admission } from '../streams/runtime/admission.js';
import type { RecordBatch } from '../streams/types.js';
import { settle as settleActor, setup } from './helpers/fake-runner.js';
import { ManualScheduler } from './helpers/manual-scheduler.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('clock', () => {
  test('the production clock runs a zero delay on the next macrotask (an immediate, not a 1 ms timer), and cancels it on unsubscribe', async () => {
    const order: string[] = [];
    preciseScheduler.schedule(() => order.push('next turn'));
    preciseScheduler.schedule(() => order.push('cancelled')).unsubscribe();
    void Promise.resolve().then(() => order.push('microtask'));
    assert.deepEqual(order, [], 'nothing runs synchronously');
    // Immediates run in the order they were queued: the clock's ran before this one, whatever the machine's load.
    await tick();
    assert.deepEqual(order, ['microtask', 'next turn']);
  });

  test('the production clock reschedules recursively, and one unsubscribe stops the chain', async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    let runs = 0;
    // The fourth run waits on a timer far beyond the test, so a slow machine cannot reach it.
    const sub = preciseScheduler.schedule(function again(this: SchedulerAction<number>, n?: number) {
      runs++;
      if ((n ?? 0) < 2) this.schedule((n ?? 0) + 1, 0);
      else this.schedule(n, 60_000);
    }, 0, 0);
    try {
      for (let i = 0; i < 5; i++) await tick();
      assert.equal(runs, 3, 'three turns ran, the fourth waits on a timer');
      assert.equal(timers(), before + 1, 'the fourth run is one pending timer');
    } finally {
      sub.unsubscribe();
    }
    assert.equal(timers(), before, 'the pending timer was cancelled with the chain');
    assert.equal(runs, 3);
  });

  test('sleep and nextTurn run on a virtual clock', async () => {
    const clock = new ManualScheduler();
    let slept = false;
    let turned = false;
    void sleep(clock, 500).then(() => { slept = true; });
    void nextTurn(clock).then(() => { turned = true; });
    await tick();
    assert.equal(turned, false, 'a turn of a virtual clock is the test\'s to give');
    clock.advance(0);
    await tick();
    assert.equal(turned, true);
    clock.advance(499);
    await tick();
    assert.equal(slept, false);
    clock.advance(1);
    await tick();
    assert.equal(slept, true);
  });
});

describe('admission on virtual time', () => {
  const batch = (n: number): RecordBatch => ({
    topic: 't', partition: 0,
    records: Array.from({ length: n }, (_, i): InboundRecord => ({ topic: 't', partition: 0, offset: i, key: null, value: null, headers: [], timestamp: 0 })),
  });

  test('releases one block per turn of the injected clock, within its capacity', async () => {
    const clock = new ManualScheduler();
    const admission = new Admission({ maxInflight: 15, blockSize: 10, clock });
    const released: number[] = [];
    // The source stays open, as a stream's does: completing it would end the operator.
    const sub = admission.operator(concat(of(batch(40)), NEVER)).subscribe((block) => released.push(block.records[0]!.offset));
    assert.deepEqual(released, [0], 'the first block goes at once');
    await tick();
    assert.deepEqual(released, [0], 'the next waits for the clock, not the event loop');
    clock.advance(0);
    assert.deepEqual(released, [0], 'a turn came, but 10 + 10 would exceed 15 in flight');
    admission.release(10);
    assert.deepEqual(released, [0, 10], 'capacity freed: released at once');
    admission.release(10);
    assert.deepEqual(released, [0, 10], 'but never two in one turn');
    clock.advance(0);
    assert.deepEqual(released, [0, 10, 20]);
    assert.equal(admission.queued, 10);
    sub.unsubscribe();
  });
});

describe('model actor on virtual time', () => {
  test('the inference histogram measures a batch on the injected clock', async () => {
    const clock = new ManualScheduler();
    const { actor, runner, metrics } = setup({ scheduler: clock, maxBatchSize: 1 });
    runner.hold = true;
    const result = actor.infer({ x: [1, 2] });
    await settleActor();
    assert.deepEqual(runner.calls, [1], 'dispatched at once: the batch is full');
    clock.advance(250);
    for (const release of runner.held.splice(0)) release();
    assert.equal((await result)['sum'], 3);
    const { values } = await metrics.inferenceSeconds.get();
    const sum = values.find((v) => v.metricName === 'verdict_model_inference_seconds_sum')?.value;
    assert.equal(sum, 0.25, 'exactly the 250 virtual ms the batch was held');
  });
});
