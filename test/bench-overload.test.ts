/**
 * The overload check's pure parts: the backlog forecast against the mock broker's retention, the drain's
 * give-up rule, the memory flatness rule, who lost what, and where each sent event sits in the input
 * topic. Nothing runs a broker or a load here.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import { drainStop, type LogState } from '../bench/drain.js';
import { judgeMemory, type MemorySample } from '../bench/memory.js';
import { attributeLoss, buffersFullAt, retentionUse } from '../bench/overload.js';
import { judgeBounds } from '../bench/overload-bounds.js';
import { overloadRate, soakRate } from '../bench/harness.js';
import type { ReportedLevel } from '../bench/report-types.js';
import type { SutMetrics } from '../bench/sut-metrics.js';
import { busiestPartitionShare, kafkajsPartitioner, predictBacklog, recordBytes, RECORD_BATCH_OVERHEAD_BYTES } from '../bench/retention.js';
import { OffsetBook } from '../bench/targets/offset-book.js';

const MiB = 2 ** 20;

describe('backlog forecast', () => {
  test('a record is sized as kafkajs encodes it', () => {
    // kafkajs's own record encoder, the one its producer writes batches with.
    const encode = createRequire(import.meta.url)('kafkajs/src/protocol/recordBatch/record/v0') as (r: object) => { size(): number };
    for (const [key, valueBytes, id] of [['card-004792', 306, 'euv3'], ['k', 10_000, 'e0'], ['card-poison', 40, 'e1abcdef']] as const) {
      const e = { key, value: Buffer.alloc(valueBytes, 97), headers: { 'bench-id': id } };
      assert.equal(recordBytes(e), encode({ offsetDelta: 0, timestampDelta: 0, key: Buffer.from(key), value: e.value, headers: e.headers }).size());
    }
  });

  test('the busiest partition holds the unread records of its share plus a batch header per tick', () => {
    const base = { rate: 1000, consumeRate: 600, durationS: 10, tickMs: 100, partitions: 2, recordBytes: 100, shareFor: (p: number) => 1 / p };
    // 4,000 unread records, written over the last 4 s (40 ticks): 2,000 × 100 bytes + 40 headers.
    const fits = predictBacklog({ ...base, retentionBytesPerPartition: 300_000 });
    assert.equal(fits.backlogRecords, 4000);
    assert.equal(fits.busiestPartitionRecords, 2000);
    assert.equal(fits.busiestPartitionBytes, 200_000 + 40 * RECORD_BATCH_OVERHEAD_BYTES);
    assert.equal(fits.fill, 0.675);
    assert.equal(fits.fits, true);
    assert.equal(fits.partitionsNeeded, 2);
    // Over 75% of retention: the forecast says no, and names the partition count at which it fits.
    const tight = predictBacklog({ ...base, retentionBytesPerPartition: 250_000 });
    assert.equal(tight.fits, false);
    assert.equal(tight.partitionsNeeded, 3);
  });

  test('a system that keeps up leaves no backlog, and batch headers alone can make a backlog not fit', () => {
    const keepsUp = predictBacklog({ rate: 1000, consumeRate: 1500, durationS: 60, tickMs: 10, partitions: 4, recordBytes: 300, shareFor: (p) => 1 / p, retentionBytesPerPartition: 5 * MiB });
    assert.equal(keepsUp.backlogRecords, 0);
    assert.equal(keepsUp.fits, true);
    // One-record batches every 10 ms for a minute: 6,000 headers per partition whatever the partitions.
    const headers = predictBacklog({ rate: 100, consumeRate: 0, durationS: 60, tickMs: 10, partitions: 1, recordBytes: 1000, shareFor: () => 1, retentionBytesPerPartition: 300_000 });
    assert.equal(headers.fits, false);
    assert.equal(headers.partitionsNeeded, null);
  });

  test('the busiest share follows kafkajs\'s partitioner and is never below an even spread', () => {
    const keys = ['a', 'a', 'a', 'b', 'c', 'd', 'e', 'f'];
    const share = busiestPartitionShare(keys);
    assert.equal(share(1), 1);
    const at4 = kafkajsPartitioner(4);
    const counts = [0, 0, 0, 0];
    for (const k of keys) counts[at4(k)]! += 1;
    assert.equal(share(4), Math.max(...counts) / keys.length);
    assert.ok(share(4) >= 3 / 8, 'the partition with the three a\'s');
  });
});

const log = (o: Partial<LogState> = {}): LogState => ({ overtakenPartitions: 0, deleted: 0, neverAccepted: 0, outputsDeleted: 0, ...o });

describe('drain give-up rule', () => {
  const limits = { timeoutS: 180, idleS: 20 };
  test('stops when caught up', () => {
    assert.equal(drainStop({ pending: 0, sinceLastOutputS: 0, elapsedS: 1, log: null }, limits)?.end, 'caught-up');
  });

  test('stops at once when every unanswered event is gone from the broker and the consumer is past them', () => {
    const stop = drainStop({ pending: 10, sinceLastOutputS: 1, elapsedS: 2, log: log({ deleted: 8, neverAccepted: 2 }) }, limits);
    assert.equal(stop?.end, 'unreachable');
    assert.match(stop?.reason ?? '', /8 deleted by broker retention.*2 never accepted/);
  });

  test('keeps waiting while a deleted event may still be in flight, or some are still in the broker', () => {
    // The group has not committed past the log start offset: it may hold records read before deletion.
    assert.equal(drainStop({ pending: 10, sinceLastOutputS: 1, elapsedS: 2, log: log({ deleted: 10, overtakenPartitions: 1 }) }, limits), null);
    assert.equal(drainStop({ pending: 10, sinceLastOutputS: 1, elapsedS: 2, log: log({ deleted: 9 }) }, limits), null);
    assert.equal(drainStop({ pending: 10, sinceLastOutputS: 1, elapsedS: 2, log: null }, limits), null);
  });

  test('gives up after a bounded time without progress, or at the timeout, and says why', () => {
    const stalled = drainStop({ pending: 10, sinceLastOutputS: 21, elapsedS: 30, log: log({ deleted: 4, outputsDeleted: 3 }) }, limits);
    assert.equal(stalled?.end, 'stalled');
    assert.match(stalled?.reason ?? '', /no output for 21 s with 10 events unanswered \(4 deleted by broker retention before being read, 3 outputs deleted/);
    assert.equal(drainStop({ pending: 10, sinceLastOutputS: 5, elapsedS: 180, log: null }, limits)?.end, 'timeout');
    assert.equal(drainStop({ pending: 10, sinceLastOutputS: 100, elapsedS: 100, log: null }, { timeoutS: 180 }), null, 'no idle limit: wait the timeout');
  });
});

describe('memory flatness', () => {
  const run = (rss: (atS: number) => number, lagPerS = 10_000, durationS = 60): MemorySample[] =>
    Array.from({ length: durationS + 10 }, (_, i) => ({ atS: i + 1, rssBytes: rss(i + 1), lag: lagPerS * Math.min(i + 1, durationS), phase: i + 1 <= durationS ? 'load' : 'catch-up' }));

  test('flat: the second half stays within the tolerance of the first 10 s while the lag grows a lot', () => {
    const m = judgeMemory(run((t) => (t < 3 ? 200 : 250) * MiB + (t % 5) * MiB), { durationS: 60, recordBytes: 340 });
    assert.equal(m.verdict, 'flat');
    assert.equal(m.referenceBytes, 254 * MiB);
    assert.equal(m.startBytes, 201 * MiB);
    assert.ok(Math.abs(m.toleranceBytes - 25.4 * MiB) < 1);
    // Lag grew 10,000 records a second over 29 s of the second half.
    assert.equal(m.queueGrowthBytes, 290_000 * 340);
  });

  test('flat but still rising is said so', () => {
    // +0.6 MiB/s from 10 s on: 18 MiB above the first 10 s's peak at the end, within the 25 MiB tolerance.
    const m = judgeMemory(run((t) => 250 * MiB + Math.max(0, t - 10) * 0.36 * MiB), { durationS: 60, recordBytes: 340 });
    assert.equal(m.verdict, 'flat');
    assert.match(m.why, /still rose 22 MiB\/min/);
  });

  test('growing: memory that follows the backlog fails', () => {
    const m = judgeMemory(run((t) => 250 * MiB + t * 3 * MiB), { durationS: 60, recordBytes: 340 });
    assert.equal(m.verdict, 'growing');
    assert.ok(m.slopeMiBPerMin > 170 && m.slopeMiBPerMin < 190);
  });

  test('buffers that fill slowly: the reference runs until backpressure first paused, and only the rest is judged', () => {
    // As measured at 510/s on 128 partitions with a consumer at about 250/s: the read-ahead (8,192 records)
    // filled at 1 MiB a second and was full 46 s in; after that memory stayed within a few MiB.
    const rss = (t: number): number => (t <= 46 ? 306 + t : 352 + (t % 3)) * MiB;
    const early = judgeMemory(run(rss, 180), { durationS: 60, recordBytes: 285 });
    assert.equal(early.verdict, 'growing', 'judged from 10 s, the filling buffers look like a leak');
    const full = judgeMemory(run(rss, 30_000), { durationS: 60, recordBytes: 285, buffersFullAtS: 46 });
    // Full at 46 s, settled 5 s later, but the last quarter of the load (from 45 s) is always judged.
    assert.equal(full.referenceS, 45);
    assert.equal(full.judgedFromS, 45);
    assert.equal(full.referenceBytes, 351 * MiB);
    assert.equal(full.verdict, 'flat', full.why);
    assert.match(full.why, /^the load after 45 s's peak is within/);
    assert.equal(judgeMemory(run(rss, 10_000), { durationS: 60, recordBytes: 285, buffersFullAtS: 20 }).referenceS, 25);
    // Growth that goes on after the buffers are full is still growth.
    const leak = judgeMemory(run((t) => rss(t) + Math.max(0, t - 46) * 4 * MiB, 30_000), { durationS: 60, recordBytes: 285, buffersFullAtS: 46 });
    assert.equal(leak.verdict, 'growing');
    // Never paused during the load: memory may still have been filling bounded buffers.
    const never = judgeMemory(run(rss, 180), { durationS: 60, recordBytes: 285, buffersFullAtS: null });
    assert.equal(never.verdict, 'inconclusive');
    assert.match(never.why, /backpressure never paused a partition/);
  });

  test('a step that memory then stays under is not growth: as measured at 1,500/s on 128 partitions', () => {
    // V8 grew its heap once, 20–26 s into the load, and memory then stayed flat and fell while the lag grew.
    const rss = (t: number): number => (t < 20 ? 330 + t * 0.7 : t < 26 ? 344 + (t - 20) * 7.5 : t < 55 ? 390 - (t % 2) : 370 + (t % 2)) * MiB;
    const levelled = judgeMemory(run(rss, 1_000), { durationS: 60, recordBytes: 285, buffersFullAtS: 7 });
    assert.ok(levelled.growthBytes > levelled.toleranceBytes, 'the peak is beyond the tolerance');
    assert.equal(levelled.verdict, 'inconclusive', 'a lag of 30,000 raw records is too little to rule out a queue');
    assert.match(levelled.why, /levelled off: over the second half it moved -\d/);
    const conclusive = judgeMemory(run(rss, 30_000), { durationS: 60, recordBytes: 285, buffersFullAtS: 7 });
    assert.equal(conclusive.verdict, 'flat', conclusive.why);
    assert.match(conclusive.why, /a step \(heap sizing\), not a queue/);
    // The same step with memory still climbing after it is growth.
    const climbing = judgeMemory(run((t) => rss(t) + Math.max(0, t - 26) * MiB, 30_000), { durationS: 60, recordBytes: 285, buffersFullAtS: 7 });
    assert.equal(climbing.verdict, 'growing');
  });

  test('the first pause during the load marks the buffers full', () => {
    const at = (atS: number, pauses: number | null, phase: 'load' | 'catch-up' = 'load') => ({
      atS, rssBytes: 1, lag: 0, phase, overtakenPartitions: 0, busiestUnread: 0,
      heapUsedBytes: null, inflight: null, admitted: null, pausedPartitions: null, mailboxDepth: null, backpressurePauses: pauses,
    });
    assert.equal(buffersFullAt([at(1, 4), at(2, null), at(3, 4), at(4, 9), at(5, 12)], 4), 4);
    assert.equal(buffersFullAt([at(1, 4), at(61, 9, 'catch-up')], 4), null, 'a pause in the catch-up is not during the load');
    assert.equal(buffersFullAt([at(1, 9)], null), null);
  });

  test('inconclusive when the lag grew too little to tell a queue from noise; not judged when told why', () => {
    assert.equal(judgeMemory(run(() => 250 * MiB, 100), { durationS: 60, recordBytes: 340 }).verdict, 'inconclusive');
    assert.equal(judgeMemory([], { durationS: 60, recordBytes: 340 }).verdict, 'inconclusive');
    const embedded = judgeMemory(run(() => 250 * MiB), { durationS: 60, recordBytes: 340, notJudged: 'holds the log' });
    assert.deepEqual([embedded.verdict, embedded.why], ['not judged', 'holds the log']);
  });
});

describe('who lost what', () => {
  const where = { deletedByBroker: 7, neverAccepted: 1, inBroker: 2, outputsDeleted: 0 };
  test('deleted records count against the broker only if retention was seen overtaking the consumer', () => {
    assert.deepEqual(attributeLoss(where, 12), { deletedByBroker: 7, neverAccepted: 1, lostBySut: 2, brokerKept: false });
    // Never overtaken: the group had committed past them before they were deleted.
    assert.deepEqual(attributeLoss(where, null), { deletedByBroker: 0, neverAccepted: 1, lostBySut: 9, brokerKept: true });
    assert.deepEqual(attributeLoss(null, null), { deletedByBroker: 0, neverAccepted: 0, lostBySut: null, brokerKept: null });
    // Nothing lost: the broker kept the backlog unless retention was seen overtaking the consumer anyway.
    const none = { deletedByBroker: 0, neverAccepted: 0, inBroker: 0, outputsDeleted: 0 };
    assert.deepEqual(attributeLoss(none, null), { deletedByBroker: 0, neverAccepted: 0, lostBySut: 0, brokerKept: true });
    assert.equal(attributeLoss(none, 3).brokerKept, false);
  });
});

describe('offset book', () => {
  test('places each unanswered event by partition and offset against the log start offsets', () => {
    const book = new OffsetBook(2);
    const partitionOf = kafkajsPartitioner(2);
    const events = ['k1', 'k2', 'k3', 'k4', 'k5', 'k6'].map((key, i) => ({ id: `e${i}`, key }));
    const partitions = book.assign(events);
    assert.deepEqual(partitions, events.map((e) => partitionOf(e.key)));
    // In flight: neither deleted nor rejected.
    assert.deepEqual(book.place(events.map((e) => e.id), new Map([[0, 99], [1, 99]])), { deleted: 0, neverAccepted: 0 });
    book.accepted(events, partitions, [{ partition: 0, baseOffset: '10' }, { partition: 1, baseOffset: '20' }]);
    const inP0 = events.filter((_, i) => partitions[i] === 0).length;
    // Partition 0's log starts after its first event; partition 1's is whole.
    assert.deepEqual(book.place(events.map((e) => e.id), new Map([[0, 11], [1, 20]])), { deleted: inP0 > 0 ? 1 : 0, neverAccepted: 0 });
    assert.deepEqual(book.place(events.map((e) => e.id), new Map([[0, 10 + inP0], [1, 26]])), { deleted: 6, neverAccepted: 0 });
    for (const e of events) book.answered(e.id);
    assert.equal(book.size, 0);
  });

  test('a failed send is never accepted, and an acknowledgement after the answer adds nothing back', () => {
    const book = new OffsetBook(1);
    const a = [{ id: 'a', key: 'x' }];
    const b = [{ id: 'b', key: 'y' }];
    book.rejected(a.map((e) => e)); // not assigned: ignored
    book.assign(a);
    book.rejected(a);
    const pb = book.assign(b);
    book.answered('b');
    book.accepted(b, pb, [{ partition: 0, baseOffset: '0' }]);
    assert.equal(book.size, 1);
    assert.deepEqual(book.place(['a', 'b'], new Map([[0, 5]])), { deleted: 0, neverAccepted: 1 });
  });
});

describe('bounded queues under overload', () => {
  const scrape = (o: Partial<SutMetrics> = {}): SutMetrics => ({
    rssBytes: 200 * MiB, heapUsedBytes: 60 * MiB, eventLoopP99Ms: 5, inflight: 0, admitted: 0, pausedPartitions: 0,
    backpressurePauses: 0, backpressureResumes: 0, mailboxes: { 'm@1': { depth: 0, capacity: 8192 } },
    bounds: { maxInflight: 512, maxBuffered: 8192, maxBufferedPerPartition: 4096 }, ...o,
  });

  test('within bounds: the largest sample of each queue against its bound, pauses and resumes counted from before to after', () => {
    const b = judgeBounds(scrape({ backpressurePauses: 3, backpressureResumes: 3 }), [
      scrape({ inflight: 8000, admitted: 512, pausedPartitions: 7, mailboxes: { 'm@1': { depth: 600, capacity: 8192 } } }),
      null,
      scrape({ inflight: 9000, admitted: 384, pausedPartitions: 16 }),
    ], scrape({ backpressurePauses: 40, backpressureResumes: 40 }), { inflightAllowance: 3000 });
    assert.equal(b.samples, 4, 'a failed scrape is not a sample');
    assert.deepEqual([b.inflight.max, b.inflight.bound, b.inflight.allowance, b.inflight.within], [9000, 8192, 3000, true]);
    assert.deepEqual([b.admitted.max, b.admitted.within], [512, true]);
    assert.deepEqual(b.mailboxes['m@1'], { max: 600, bound: 8192, allowance: 0, within: true, meaning: b.mailboxes['m@1']?.meaning });
    assert.deepEqual([b.pauses, b.resumes, b.pausedPartitionsMax, b.withinBounds, b.pausedAndResumed], [37, 37, 16, true, true]);
  });

  test('a queue past its bound fails the check; no pause at all fails the other', () => {
    const over = judgeBounds(scrape(), [scrape({ inflight: 11_193 }), scrape({ admitted: 513 })], scrape(), { inflightAllowance: 3000 });
    assert.equal(over.inflight.within, false);
    assert.equal(over.admitted.within, false);
    assert.equal(over.withinBounds, false);
    assert.equal(over.pausedAndResumed, false);
    const blind = judgeBounds(null, [null], null, { inflightAllowance: 0 });
    assert.deepEqual([blind.withinBounds, blind.pausedAndResumed, blind.samples], [null, null, 0]);
  });

  test('retention use: the busiest partition\'s peak unread records in record-batch bytes, and the headroom left', () => {
    const sample = (atS: number, lag: number, busiestUnread: number | null) => ({
      atS, rssBytes: 1, lag, phase: 'load' as const, overtakenPartitions: 0, busiestUnread,
      heapUsedBytes: null, inflight: null, admitted: null, pausedPartitions: null, mailboxDepth: null, backpressurePauses: null,
    });
    // 100,000 records of lag at 10,000/s span 10 s = 200 ticks of 50 ms; the busiest partition holds 5,000 of them.
    const use = retentionUse([sample(1, 10_000, 500), sample(2, 100_000, 5_000), sample(3, 50_000, 2_500)], {
      recordBytes: 340, retentionBytesPerPartition: 5 * MiB, rate: 10_000, tickMs: 50,
    });
    assert.deepEqual(use, {
      busiestUnreadMax: 5_000, bytes: 5_000 * 340 + 200 * RECORD_BATCH_OVERHEAD_BYTES, retentionBytesPerPartition: 5 * MiB,
      fill: 0.327, headroom: 0.673,
    });
    assert.equal(retentionUse([sample(1, 10, null)], { recordBytes: 340, retentionBytesPerPartition: 5 * MiB, rate: 1, tickMs: 50 }), null);
    assert.equal(retentionUse([sample(1, 10, 10)], { recordBytes: 340, retentionBytesPerPartition: null, rate: 1, tickMs: 50 }), null);
  });
});

describe('overload and soak rates', () => {
  const level = (offeredRate: number, achievedRate: number) => ({ offeredRate, achievedRate }) as unknown as ReportedLevel;
  test('given, else twice the max sustainable rate, else twice the best throughput any level achieved', () => {
    assert.deepEqual(overloadRate(5000, 3000, []), { rate: 5000, rateBasis: 'given (--overload-rate)' });
    assert.equal(overloadRate(undefined, 3000, [level(6000, 4100)]).rate, 6000);
    const busy = overloadRate(undefined, null, [level(500, 85.2), level(250, 98.4), level(130, 80)]);
    assert.equal(busy.rate, 200);
    assert.match(busy.rateBasis, /no level met the latency objective: 2× the highest throughput achieved in a level, 98\/s/);
    assert.equal(overloadRate(undefined, null, []).rate, null);
  });

  test('the soak runs at half of the same', () => {
    assert.equal(soakRate(300, 3000, []).rate, 300);
    assert.deepEqual(soakRate(undefined, 3000, []), { rate: 1500, rateBasis: 'half the max sustainable rate found in this run, 3000/s' });
    assert.equal(soakRate(undefined, null, [level(500, 254.4)]).rate, 130);
    assert.equal(soakRate(undefined, null, []).rate, null);
  });
});
