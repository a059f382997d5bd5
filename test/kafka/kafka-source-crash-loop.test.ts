/**
 * A consumer that keeps crashing at the same position is reported, never silent: `crashLoop()` (which
 * the daemon's readiness reads), a gauge holding the offset, and an error log line with it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { VirtualTimeScheduler } from 'rxjs';
import { TransportError } from '../../core/errors.js';
import { createMetrics } from '../../core/metrics.js';
import { KafkaSource } from '../../streams/kafka/kafka-source.js';
import { collect, fakeFactory, fakeOptions, fetched, settle, tp } from './helpers/fake-kafka.js';

const atOffset = (offset: number): TransportError =>
  new TransportError(`handing over t/0 from offset ${offset} failed: boom`, { details: { topic: 't', partition: 0, offset } });

async function crashLoopGauge(metrics: ReturnType<typeof createMetrics>): Promise<Array<{ labels: object; value: number }>> {
  return (await metrics.consumerCrashLoop.get()).values.map((v) => ({ labels: v.labels, value: v.value }));
}

describe('KafkaSource crash loops', () => {
  test('three crashes on the same batch with nothing delivered between are a crash loop, cleared by the next batch', async () => {
    const scheduler = new VirtualTimeScheduler();
    const { factory, consumers } = fakeFactory();
    const metrics = createMetrics();
    const source = new KafkaSource(fakeOptions, { factory, scheduler, random: () => 0, metrics });
    collect(source);
    await settle();
    for (let i = 0; i < 3; i++) {
      assert.equal(source.crashLoop(), undefined, `not a loop after ${i} crashes`);
      const consumer = consumers.at(-1);
      consumer?.h.joined([tp(0), tp(1)]);
      consumer?.h.crashed(atOffset(7));
      scheduler.flush();
      await settle();
    }
    assert.deepEqual(source.crashLoop(), { crashes: 3, topic: 't', partition: 0, offset: 7, error: 'handing over t/0 from offset 7 failed: boom' });
    assert.deepEqual(await crashLoopGauge(metrics), [{ labels: { topic: 't', partition: '0' }, value: 7 }]);
    assert.equal(consumers.length, 4, 'the source keeps recreating the consumer');

    // A fourth crash at the same place keeps counting; a batch delivered ends the loop.
    consumers[3]?.h.joined([tp(0)]);
    consumers[3]?.h.crashed(atOffset(7));
    scheduler.flush();
    await settle();
    assert.equal(source.crashLoop()?.crashes, 4);
    consumers[4]?.h.joined([tp(0)]);
    assert.equal(consumers[4]?.h.batch(fetched(0, [7, 8])), true);
    assert.equal(source.crashLoop(), undefined);
    assert.deepEqual(await crashLoopGauge(metrics), []);
    await source.close();
  });

  test('crashes at different positions are not a loop', async () => {
    const scheduler = new VirtualTimeScheduler();
    const { factory, consumers } = fakeFactory();
    const source = new KafkaSource(fakeOptions, { factory, scheduler, random: () => 0 });
    collect(source);
    await settle();
    for (const offset of [7, 8, 7, 9]) {
      consumers.at(-1)?.h.crashed(atOffset(offset));
      scheduler.flush();
      await settle();
    }
    assert.equal(source.crashLoop(), undefined);
    await source.close();
  });

  test('crashes that name no batch count at the fetch positions of the assignment', async () => {
    const scheduler = new VirtualTimeScheduler();
    const { factory, consumers } = fakeFactory();
    const source = new KafkaSource({ ...fakeOptions, crashLoopThreshold: 2 }, { factory, scheduler, random: () => 0 });
    collect(source);
    await settle();
    for (let i = 0; i < 2; i++) {
      consumers.at(-1)?.h.joined([tp(0)]);
      consumers.at(-1)?.h.crashed(new TransportError('broker gone'));
      scheduler.flush();
      await settle();
    }
    assert.deepEqual(source.crashLoop(), { crashes: 2, error: 'broker gone' });
    await source.close();
  });
});
