/**
 * KafkaSource's stall watchdog against the fake client on virtual time: a consumer that stops delivering
 * while records wait (known from its last fetch, or from the admin client) is replaced as after a crash;
 * paused partitions, caught-up partitions, a partition that delivers between checks, a failing check and a
 * repeated stall at the same offset are left alone.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { createMetrics } from '../../core/metrics.js';
import { KafkaSource } from '../../streams/kafka/kafka-source.js';
import { ManualScheduler } from '../helpers/manual-scheduler.js';
import { range } from '../helpers/wait.js';
import { FakeAdmin, collect, fakeFactory, fakeOptions, fetched, settle, tp } from './helpers/fake-kafka.js';

interface LogLine { readonly level: number; readonly msg: string; readonly [field: string]: unknown }

const STALL_MS = 10_000;
/** Checks run every half timeout, from the assignment on. */
const TICK_MS = STALL_MS / 2;

/** A subscribed source over the fake client with an admin, a manual clock, a captured log and metrics. */
async function startWatched(stallTimeoutMs = STALL_MS) {
  const admin = new FakeAdmin();
  const { factory, consumers } = fakeFactory([], admin);
  const scheduler = new ManualScheduler();
  const logs: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => { logs.push(JSON.parse(line) as LogLine); } });
  const metrics = createMetrics();
  // random() = 1: the restart backoff is its ceiling, 100 ms for a first failure.
  const source = new KafkaSource({ ...fakeOptions, stallTimeoutMs, logger }, { factory, scheduler, random: () => 1, metrics });
  const seen = collect(source);
  await settle();
  /**
   * Moves virtual time in steps of at most 100 ms, letting promises settle after each: a check's admin
   * round-trip and a consumer restart complete before the next tick, as they would in real time.
   */
  const advance = async (ms: number): Promise<void> => {
    for (let left = ms; left > 0; left -= 100) {
      scheduler.advance(Math.min(100, left));
      await settle();
    }
  };
  const restarts = async (reason: string): Promise<number> =>
    (await metrics.consumerRestarts.get()).values.find((v) => v.labels['reason'] === reason)?.value ?? 0;
  const logged = (msg: string): LogLine[] => logs.filter((l) => l.msg === msg);
  return { source, consumers, admin, scheduler, seen, advance, restarts, logged };
}

describe('KafkaSource stall watchdog (fake client)', () => {
  test('records waiting and no batch for the timeout: warns, revokes and recreates the consumer', async () => {
    const w = await startWatched();
    w.consumers[0]?.h.joined([tp(0), tp(1)]);
    assert.equal(w.consumers[0]?.h.batch(fetched(0, range(0, 5))), true);
    assert.equal(w.consumers[0]?.h.batch(fetched(1, range(0, 3))), true);
    w.admin.ends.set(0, 10).set(1, 3); // partition 0 has 5 unread records, partition 1 none

    await w.advance(TICK_MS);
    assert.equal(w.admin.requests, 2, 'one lag check (committed offsets, then log ends)');
    assert.equal(w.consumers.length, 1, 'one sighting is not a stall: the records may have just arrived');

    await w.advance(TICK_MS);
    assert.equal(w.consumers[0]?.stopped, true, 'the stalled consumer is stopped');
    assert.deepEqual(w.seen.kinds(), ['assigned:0,1', 'revoked:0,1'], 'the stream is told to forget what it had in flight');
    const [warning] = w.logged('consumer stalled; recreating it');
    assert.equal(warning?.level, 40);
    assert.deepEqual(warning['stalled'], [{ topic: 't', partition: 0, position: 5, highWatermark: 10, idleMs: STALL_MS }]);
    assert.equal(await w.restarts('stall'), 1);
    assert.equal(await w.restarts('crash'), 0);

    await w.advance(100);
    assert.equal(w.consumers.length, 2, 'a new consumer after the crash backoff');
    w.consumers[1]?.h.joined([tp(0), tp(1)]);
    assert.equal(w.consumers[1]?.h.batch(fetched(0, range(0, 10))), true, 'the new consumer reads again from the commit');
    assert.deepEqual(w.seen.kinds(), ['assigned:0,1', 'revoked:0,1', 'assigned:0,1']);
    assert.deepEqual(w.seen.offsets(0), [...range(0, 5), ...range(0, 10)]);
    await w.source.close();
  });

  test('a last fetch that reported records past the position is evidence enough, even with the admin stuck', async () => {
    const w = await startWatched();
    w.consumers[0]?.h.joined([tp(0), tp(1)]);
    // As in the outage test: the new member re-reads from the commit, then fetches nothing more.
    w.consumers[0]?.h.batch(fetched(0, range(489, 585), 2_471));
    w.consumers[0]?.h.batch(fetched(1, range(0, 3), 3));
    let unstick = (): void => undefined;
    w.admin.gate = new Promise((resolve) => { unstick = resolve; }); // every admin request hangs
    await w.advance(TICK_MS);
    assert.equal(w.consumers[0]?.stopped, false, 'idle only half the timeout');
    await w.advance(TICK_MS);
    assert.equal(w.consumers[0]?.stopped, true);
    assert.deepEqual(w.logged('consumer stalled; recreating it')[0]?.['stalled'], [{ topic: 't', partition: 0, position: 585, highWatermark: 2_471, idleMs: STALL_MS }],
      'partition 1 was caught up at its last fetch');
    assert.equal(w.admin.requests, 1, 'one admin check started (for the half-idle partitions) and never returned');
    unstick();
    await w.source.close();
  });

  test('a partition lagging from its committed offset without a first batch counts too', async () => {
    const w = await startWatched();
    w.consumers[0]?.h.joined([tp(0)]);
    w.admin.committed.set(0, 40);
    w.admin.ends.set(0, 50);
    await w.advance(2 * TICK_MS);
    assert.deepEqual(w.logged('consumer stalled; recreating it')[0]?.['stalled'], [{ topic: 't', partition: 0, position: 40, highWatermark: 50, idleMs: STALL_MS }]);
    await w.source.close();
  });

  test('partitions paused by the stream are not watched; a resumed one gets the whole timeout again', async () => {
    const w = await startWatched();
    w.consumers[0]?.h.joined([tp(0), tp(1)]);
    w.admin.ends.set(0, 100).set(1, 100); // everything unread: lag 100 on both
    w.source.pause([tp(0), tp(1)]);
    await w.advance(6 * TICK_MS);
    assert.equal(w.admin.requests, 0, 'no check while every partition is paused');
    assert.equal(w.consumers.length, 1);
    assert.deepEqual(w.seen.kinds(), ['assigned:0,1']);

    w.source.resume([tp(0)]);
    await w.advance(TICK_MS);
    assert.equal(w.consumers.length, 1);
    assert.equal(w.consumers[0]?.stopped, false);
    await w.advance(TICK_MS);
    assert.deepEqual(w.logged('consumer stalled; recreating it')[0]?.['stalled'], [{ topic: 't', partition: 0, position: 0, highWatermark: 100, idleMs: STALL_MS }],
      'only the resumed partition, idle from its resume');
    await w.source.close();
  });

  test('nothing to read, or a batch between two checks: no restart', async () => {
    const w = await startWatched();
    w.consumers[0]?.h.joined([tp(0), tp(1), tp(2)]);
    w.consumers[0]?.h.batch(fetched(0, range(0, 10), 10)); // caught up at its fetch
    w.admin.ends.set(0, 10).set(1, 7).set(2, 30);
    w.admin.committed.set(1, 7); // caught up without a batch since the assignment
    w.admin.committed.set(2, 20);
    await w.advance(TICK_MS);
    // Partition 2 was behind at that check; it delivers before the next one, then catches up.
    w.consumers[0]?.h.batch(fetched(2, range(20, 30), 30));
    await w.advance(10 * TICK_MS);
    assert.ok(w.admin.requests >= 10, `the watchdog kept checking (${w.admin.requests} admin requests)`);
    assert.equal(w.consumers.length, 1);
    assert.equal(w.consumers[0]?.stopped, false);
    assert.deepEqual(w.seen.kinds(), ['assigned:0,1,2']);
    assert.equal(await w.restarts('stall'), 0);
    await w.source.close();
  });

  test('a batch that arrives while a check waits on the admin voids that check', async () => {
    const w = await startWatched();
    w.consumers[0]?.h.joined([tp(0)]);
    w.admin.ends.set(0, 10);
    await w.advance(TICK_MS); // first sighting
    let open = (): void => undefined;
    w.admin.gate = new Promise((resolve) => { open = resolve; });
    await w.advance(TICK_MS);
    w.consumers[0]?.h.batch(fetched(0, range(0, 7)));
    w.admin.gate = undefined;
    open();
    await w.advance(TICK_MS + 100);
    assert.equal(w.consumers[0]?.stopped, false, 'idle only half the timeout since the batch');
    await w.advance(TICK_MS);
    assert.deepEqual(w.logged('consumer stalled; recreating it')[0]?.['stalled'], [{ topic: 't', partition: 0, position: 7, highWatermark: 10, idleMs: STALL_MS }]);
    await w.source.close();
  });

  test('a failing check restarts nothing', async () => {
    const w = await startWatched();
    w.consumers[0]?.h.joined([tp(0)]);
    w.admin.ends.set(0, 10);
    w.admin.failure = new Error('broker down');
    await w.advance(4 * TICK_MS);
    assert.equal(w.consumers.length, 1);
    assert.equal(w.logged('stall check failed; no restart without evidence').length, 4);
    await w.source.close();
  });

  test('stuck at the same offset after a stall restart: reported once, not restarted again', async () => {
    // As a tail of transaction markers: kafkajs skips them without a batch, so the position never reaches the end.
    const w = await startWatched();
    w.consumers[0]?.h.joined([tp(0)]);
    w.admin.committed.set(0, 5);
    w.admin.ends.set(0, 6);
    await w.advance(2 * TICK_MS + 100);
    assert.equal(w.consumers.length, 2);
    w.consumers[1]?.h.joined([tp(0)]);
    await w.advance(8 * TICK_MS);
    assert.equal(w.consumers.length, 2, 'no second restart at the same offset');
    assert.equal(w.logged('partition still gets no batch at the offset of a stall restart; not restarting for it again').length, 1);

    // Once it moves past that offset, a new stall is a stall again.
    w.consumers[1]?.h.batch(fetched(0, [5, 6]));
    w.admin.ends.set(0, 9);
    await w.advance(2 * TICK_MS);
    assert.equal(w.consumers[1]?.stopped, true);
    assert.equal(await w.restarts('stall'), 2);
    await w.source.close();
  });

  test('close waits for a check in flight before disconnecting the admin, and starts none', async () => {
    const w = await startWatched();
    w.consumers[0]?.h.joined([tp(0)]);
    w.admin.ends.set(0, 10);
    let open = (): void => undefined;
    w.admin.gate = new Promise((resolve) => { open = resolve; });
    await w.advance(TICK_MS);
    assert.equal(w.admin.requests, 1, 'a check is waiting on the admin');
    let closed = false;
    const closing = w.source.close().then(() => { closed = true; });
    await settle();
    assert.equal(closed, false, 'close waits for the check');
    assert.equal(w.admin.disconnects, 0);
    open();
    await closing;
    assert.equal(w.admin.disconnects, 1);
    const requests = w.admin.requests;
    await w.advance(10 * TICK_MS);
    assert.equal(w.admin.requests, requests, 'no check after close');
    assert.equal(w.consumers.length, 1, 'the check that ended during close restarted nothing');
  });

  test('stallTimeoutMs 0 turns the watchdog off', async () => {
    const w = await startWatched(0);
    w.consumers[0]?.h.joined([tp(0)]);
    w.admin.ends.set(0, 10);
    await w.advance(60_000);
    assert.equal(w.admin.requests, 0);
    assert.equal(w.scheduler.pendingCount, 0, 'no timer either');
    await w.source.close();
  });
});
