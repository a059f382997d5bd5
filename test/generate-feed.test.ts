/**
 * The feed behind `verdict generate`, on virtual time against a fake producer: what is due is sent each tick,
 * one round in flight at most, a slow broker caught up in bounded rounds, failures counted and survived,
 * `count` and `stop()` honoured. The command itself against the mock broker: test/kafka/generate-command.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startFeed, type FeedOptions } from '../bench/feed.js';
import { silentLogger } from '../core/log.js';
import type { ProducerLike, TopicRecords } from '../streams/kafka/kafka-client.js';
import { ManualScheduler } from './helpers/manual-scheduler.js';

/** A producer whose rounds settle when the test says (or at once with `auto`). */
function fakeProducer(auto: boolean) {
  const rounds: TopicRecords[][] = [];
  const settle: Array<(err?: Error) => void> = [];
  const producer: ProducerLike = {
    connect: () => Promise.resolve(),
    disconnect: () => Promise.resolve(),
    sendBatch: (batch) => {
      rounds.push([...batch]);
      if (auto) return Promise.resolve([]);
      return new Promise((resolve, reject) => settle.push((err) => (err === undefined ? resolve([]) : reject(err))));
    },
  };
  const sizes = (): number[] => rounds.map((r) => r.reduce((n, t) => n + t.records.length, 0));
  return { producer, rounds, settle, sizes };
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function advance(clock: ManualScheduler, ms: number, tickMs = 100): Promise<void> {
  for (let t = 0; t < ms; t += tickMs) {
    clock.advance(tickMs);
    await flush();
  }
}

function options(clock: ManualScheduler, producer: ProducerLike, extra: Partial<FeedOptions> = {}): FeedOptions {
  return { producer, topic: 'transactions', rate: 100, idPrefix: 'g1-', seed: 7, poisonRate: 0, clock, logger: silentLogger, ...extra };
}

describe('generate feed', () => {
  test('sends what has fallen due every tick, as transactions keyed by card', async () => {
    const clock = new ManualScheduler();
    const fake = fakeProducer(true);
    const feed = startFeed(options(clock, fake.producer));
    await advance(clock, 1_000);
    assert.deepEqual(fake.sizes(), Array(10).fill(10));
    const records = fake.rounds.flatMap((r) => r.flatMap((t) => t.records));
    assert.ok(records.every((r) => r.topic === 'transactions'));
    const events = records.map((r) => ({ key: r.key, event: JSON.parse(String(r.value)) as { id: string; key: string; amount: number } }));
    assert.ok(events.every(({ key, event }) => key === event.key && typeof event.amount === 'number'));
    assert.equal(new Set(events.map(({ event }) => event.id)).size, 100);
    assert.ok(events.every(({ event }) => event.id.startsWith('g1-')));
    feed.stop();
    assert.deepEqual(await feed.done, { sent: 100, failed: 0 });
  });

  test('a slow broker: one round in flight, then catch-up rounds of at most maxBatch', async () => {
    const clock = new ManualScheduler();
    const fake = fakeProducer(false);
    const feed = startFeed(options(clock, fake.producer, { maxBatch: 50 }));
    await advance(clock, 1_000);
    assert.deepEqual(fake.sizes(), [10], 'nothing more is sent while the first round is in flight');
    fake.settle[0]?.();
    await flush();
    await advance(clock, 100);
    assert.deepEqual(fake.sizes(), [10, 50]);
    fake.settle[1]?.();
    await flush();
    await advance(clock, 100);
    // Due by 1.2 s: 120, of which 60 were sent: capped again.
    assert.deepEqual(fake.sizes(), [10, 50, 50]);
    fake.settle[2]?.();
    feed.stop();
    assert.deepEqual(await feed.done, { sent: 110, failed: 0 });
  });

  test('a rejected round is counted as failed and the feed goes on', async () => {
    const clock = new ManualScheduler();
    const fake = fakeProducer(false);
    const feed = startFeed(options(clock, fake.producer));
    await advance(clock, 100);
    fake.settle[0]?.(new Error('broker gone'));
    await flush();
    await advance(clock, 100);
    fake.settle[1]?.();
    await flush();
    feed.stop();
    assert.deepEqual(await feed.done, { sent: 10, failed: 10 });
    assert.deepEqual(fake.sizes(), [10, 10]);
  });

  test('count: stops after exactly that many events, with no timer left', async () => {
    const clock = new ManualScheduler();
    const fake = fakeProducer(true);
    const feed = startFeed(options(clock, fake.producer, { count: 25 }));
    await advance(clock, 1_000);
    assert.deepEqual(await feed.done, { sent: 25, failed: 0 });
    assert.deepEqual(fake.sizes(), [10, 10, 5]);
    assert.equal(clock.pendingCount, 0);
  });

  test('stop waits for the round in flight and sends nothing after it', async () => {
    const clock = new ManualScheduler();
    const fake = fakeProducer(false);
    const feed = startFeed(options(clock, fake.producer));
    await advance(clock, 100);
    feed.stop();
    let settled = false;
    void feed.done.then(() => { settled = true; });
    await flush();
    assert.equal(settled, false, 'done waits for the round in flight');
    fake.settle[0]?.();
    assert.deepEqual(await feed.done, { sent: 10, failed: 0 });
    await advance(clock, 500);
    assert.deepEqual(fake.sizes(), [10]);
    assert.equal(clock.pendingCount, 0);
  });
});
