import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Subject } from 'rxjs';
import { ForcedStopError, SchemaError, TransportError } from '../core/errors.js';
import { LIFECYCLE_STATES, Lifecycle, canMove, stopWithin, type LifecycleState } from '../core/lifecycle.js';
import { silentLogger } from '../core/log.js';
import { retry } from '../core/retry.js';
import { toEncodedOutcome, type Outcome } from '../pipeline/outcome.js';
import type { InboundRecord, OutboundRecord, TopicPartition } from '../pipeline/record.js';
import { CommitTracker } from '../streams/runtime/commit-tracker.js';
import { PartitionedStream } from '../streams/runtime/partitioned-stream.js';
import type { Sink, Source, SourceEvent } from '../streams/types.js';
import { ManualScheduler } from './helpers/manual-scheduler.js';

const tick = () => new Promise<void>((r) => setImmediate(r));
const settle = async (): Promise<void> => { for (let i = 0; i < 20; i++) await tick(); };

describe('lifecycle', () => {
  test('legal transitions move and report true; illegal ones report false and change nothing', () => {
    const legal: Array<[LifecycleState, LifecycleState]> = [
      ['starting', 'running'], ['starting', 'draining'], ['starting', 'failed'],
      ['running', 'draining'], ['running', 'failed'], ['draining', 'stopped'], ['draining', 'failed'],
    ];
    for (const from of LIFECYCLE_STATES) {
      for (const to of LIFECYCLE_STATES) {
        const expected = legal.some(([f, t]) => f === from && t === to);
        assert.equal(canMove(from, to), expected, `${from} → ${to}`);
      }
    }
    const lifecycle = new Lifecycle();
    assert.equal(lifecycle.moveTo('stopped'), false, 'starting → stopped skips draining');
    assert.equal(lifecycle.state, 'starting');
    assert.equal(lifecycle.moveTo('running'), true);
    assert.equal(lifecycle.moveTo('running'), false, 'no self-transition');
    assert.equal(lifecycle.moveTo('draining'), true);
    assert.equal(lifecycle.accepting, false);
    assert.equal(lifecycle.moveTo('stopped'), true);
    assert.equal(lifecycle.moveTo('failed'), false, 'stopped is terminal');
    assert.equal(lifecycle.state, 'stopped');
    assert.equal(lifecycle.terminal, true);
  });

  test('the state stream replays the current state and completes on a terminal one', () => {
    const lifecycle = new Lifecycle();
    lifecycle.moveTo('running');
    const seen: LifecycleState[] = [];
    let completed = false;
    lifecycle.state$.subscribe({ next: (s) => seen.push(s), complete: () => { completed = true; } });
    lifecycle.moveTo('failed');
    lifecycle.moveTo('stopped');
    assert.deepEqual(seen, ['running', 'failed']);
    assert.equal(completed, true);
  });

  test('a stop that finishes in time is not forced and its timer is cancelled', async () => {
    const clock = new ManualScheduler();
    const controller = new AbortController();
    const outcome = await stopWithin({ clock, timeoutMs: 1000, controller }, () => Promise.resolve(42));
    assert.deepEqual(outcome, { forced: false, value: 42 });
    assert.equal(clock.pendingCount, 0, 'no forced-stop timer left behind');
    assert.equal(controller.signal.aborted, false);
  });

  test('the forced-stop timer ends a hung stop on virtual time: onForced runs, then the signal aborts', async () => {
    const clock = new ManualScheduler();
    const controller = new AbortController();
    const order: string[] = [];
    controller.signal.addEventListener('abort', () => order.push('abort'));
    let seenSignal: AbortSignal | undefined;
    const stopping = stopWithin({ clock, timeoutMs: 1000, controller, onForced: () => order.push('onForced') }, (signal) => {
      seenSignal = signal;
      return new Promise<never>(() => undefined);
    });
    clock.advance(999);
    await tick();
    assert.deepEqual(order, [], 'not before its time');
    clock.advance(1);
    assert.deepEqual(await stopping, { forced: true });
    assert.deepEqual(order, ['onForced', 'abort']);
    assert.equal(seenSignal, controller.signal);
    const reason: unknown = controller.signal.reason;
    assert.ok(reason instanceof ForcedStopError);
    assert.equal(reason.code, ForcedStopError.code);
  });
});

describe('retry and the stop signal', () => {
  test('an aborted retry ends at once, mid-backoff, without the clock moving', async () => {
    const clock = new ManualScheduler();
    const controller = new AbortController();
    let attempts = 0;
    const retrying = retry(() => { attempts++; return Promise.reject(new TransportError('broker away')); }, {
      attempts: Infinity, initialDelayMs: 60_000, maxDelayMs: 60_000, random: () => 1, clock, signal: controller.signal,
    });
    await tick();
    assert.equal(attempts, 1);
    assert.equal(clock.pendingCount, 1, 'the backoff waits on the injected clock');
    const reason = new ForcedStopError('stop ran out of time');
    controller.abort(reason);
    await assert.rejects(retrying, (err) => err === reason);
    assert.equal(clock.pendingCount, 0, 'the backoff timer is cancelled');
    assert.equal(attempts, 1, 'no attempt after the abort');
  });
});

// ---- the decision stream's stop -------------------------------------------------------------------------

const p0: TopicPartition = { topic: 'in', partition: 0 };
const batchOf = (from: number, to: number): SourceEvent => ({ type: 'batch', batch: { ...p0, records: Array.from({ length: to - from }, (_, i) => ({
  ...p0, offset: from + i, key: null, value: Buffer.from('v'), headers: [], timestamp: 0,
})) } });

/** A source fed by the test, whose commits hang when `hangCommits` is set. */
function fakeSource(hangCommits: boolean) {
  const events = new Subject<SourceEvent>();
  const commits: number[] = [];
  const source: Source = {
    events$: events,
    commit: (offsets) => {
      commits.push(...offsets.map((o) => o.offset));
      return hangCommits ? new Promise<void>(() => undefined) : Promise.resolve();
    },
    pause: () => undefined,
    resume: () => undefined,
    close: () => Promise.resolve(),
  };
  return { source, events, commits };
}

const deadLettered = (records: readonly InboundRecord[]) => Promise.resolve(records.map((record) => {
  const outcome: Outcome = { kind: 'dead-letter', record, error: new SchemaError('x'), attempts: 1 };
  const output: OutboundRecord = { topic: 'out', key: null, value: 'x', headers: [] };
  return toEncodedOutcome(outcome, output);
}));

function streamOver(source: Source, sink: Sink, scheduler: ManualScheduler, logged: string[]): PartitionedStream {
  const logger = { ...silentLogger, warn: (_: unknown, msg?: string) => { if (msg !== undefined) logged.push(msg); } } as unknown as typeof silentLogger;
  return new PartitionedStream({
    deadLetter: { topic: 'dlq', pipeline: 'p' },
    source, sink, process: deadLettered,
    tracker: new CommitTracker(), scheduler, logger,
    options: { commitIntervalMs: 100_000 },
  });
}

describe('decision stream stop', () => {
  test('the forced-stop timer covers the final commit: a hung commit ends the stop on time, stopped, nothing lost', async () => {
    const scheduler = new ManualScheduler();
    const { source, events, commits } = fakeSource(true);
    const logged: string[] = [];
    const stream = streamOver(source, { send: () => Promise.resolve([]), close: () => Promise.resolve() }, scheduler, logged);
    stream.start();
    events.next({ type: 'assigned', partitions: [p0] });
    events.next(batchOf(0, 10));
    await settle();
    assert.equal(stream.inflight, 0, 'every record delivered before the stop');
    let report: { drained: boolean; abandoned: number } | undefined;
    const stopping = stream.drain(1000).then((r) => { report = r; });
    await settle();
    assert.deepEqual(commits, [10], 'the final commit was sent, and hangs');
    assert.equal(report, undefined, 'the stop waits for the commit');
    assert.equal(stream.state, 'draining');
    scheduler.advance(1000);
    await stopping;
    assert.deepEqual(report, { drained: false, abandoned: 0 }, 'forced: the commit did not finish, so offsets 0-9 may be read again');
    assert.equal(stream.state, 'stopped', 'a forced stop is still a stop');
    assert.ok(logged.some((m) => m.startsWith('forced stop')), `a log line says so: ${JSON.stringify(logged)}`);
  });

  test('a forced stop aborts the sink retry of an undeliverable record: it ends, and nothing is committed past it', async () => {
    const scheduler = new ManualScheduler();
    const { source, events, commits } = fakeSource(false);
    let sends = 0;
    const sink: Sink = { send: () => { sends++; return Promise.reject(new TransportError('broker away')); }, close: () => Promise.resolve() };
    const logged: string[] = [];
    const stream = streamOver(source, sink, scheduler, logged);
    stream.start();
    events.next({ type: 'assigned', partitions: [p0] });
    events.next(batchOf(0, 5));
    await settle();
    const stopping = stream.drain(1000);
    for (let t = 0; t < 10; t++) { scheduler.advance(100); await settle(); }
    assert.deepEqual(await stopping, { drained: false, abandoned: 5 });
    assert.equal(stream.state, 'stopped', 'the aborted retry does not fail the stream');
    assert.equal(stream.failure, undefined);
    const sent = sends;
    assert.ok(sent > 1, `the send was retried while draining (${sent} sends)`);
    scheduler.advance(60_000);
    await settle();
    assert.equal(sends, sent, 'no send after the stop: the retry ended');
    assert.equal(scheduler.pendingCount, 0, 'no timer left: backoff, commit and forced-stop timers are all gone');
    assert.deepEqual(commits, [], 'nothing acknowledged, nothing committed: Kafka delivers the five again');
  });

  test('a stop that drains in time commits everything and reports drained', async () => {
    const scheduler = new ManualScheduler();
    const { source, events, commits } = fakeSource(false);
    const stream = streamOver(source, { send: () => Promise.resolve([]), close: () => Promise.resolve() }, scheduler, []);
    stream.start();
    events.next({ type: 'assigned', partitions: [p0] });
    events.next(batchOf(0, 10));
    await settle();
    assert.deepEqual(await stream.drain(1000), { drained: true, abandoned: 0 });
    assert.deepEqual(commits, [10]);
    assert.equal(stream.state, 'stopped');
    assert.deepEqual(await stream.drain(1000), { drained: true, abandoned: 0 }, 'a second stop is a no-op');
  });
});
