/**
 * Per-key windows on virtual time (event time is data): exact values over hand-computed sequences, the
 * window's edge, before and after, late and out-of-order events, the distinct bound, timeSince.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { StateEventTimeError, StateKeyMissingError } from '../core/errors.js';
import { PartitionState } from '../pipeline/state/partition-state.js';
import type { StateRead, StateValues } from '../pipeline/state/types.js';
import { HOUR, MIN, distinct, key, last, stateDef, timeSince, windowed } from './helpers/state-def.js';

function values(read: StateRead): StateValues {
  assert.ok('values' in read, `expected values, got ${JSON.stringify(read)}`);
  return read.values;
}

const full = stateDef({
  aggregates: [
    windowed('c', 'count', null, HOUR),
    windowed('s', 'sum', 'amount', HOUR),
    windowed('m', 'mean', 'amount', HOUR),
    windowed('lo', 'min', 'amount', HOUR),
    windowed('hi', 'max', 'amount', HOUR),
    distinct('d', 'merchant', HOUR),
    last('country', 'country'),
    timeSince('since'),
  ],
});

describe('windowed aggregates over a hand-computed sequence', () => {
  test('count, sum, mean, min, max, distinct, last and timeSince after each event, read at its own time', () => {
    let late = 0;
    const s = new PartitionState(full, { onLate: () => { late++; } });
    const k = key('card-1');
    assert.deepEqual(values(s.apply(0, k, { ts: 0, amount: 10, merchant: 'a', country: 'FR' })),
      { c: 1, s: 10, m: 10, lo: 10, hi: 10, d: 1, country: 'FR', since: null });
    // A missing country leaves last unchanged; 30 s since the previous event.
    assert.deepEqual(values(s.apply(1, k, { ts: 30_000, amount: 5.5, merchant: 'b' })),
      { c: 2, s: 15.5, m: 7.75, lo: 5.5, hi: 10, d: 2, country: 'FR', since: 30 });
    // A non-numeric amount is ignored by sum/mean/min/max, the event still counted; 'a' is not new.
    assert.deepEqual(values(s.apply(2, k, { ts: 120_000, amount: 'x', merchant: 'a', country: 'DE' })),
      { c: 3, s: 15.5, m: 7.75, lo: 5.5, hi: 10, d: 2, country: 'DE', since: 90 });
    // Out of order within lateness (120 000 - 60 000 <= 90 000): applied to bucket 1 and read at 90 000,
    // whose window (buckets -59..1) excludes bucket 2 (the event at 120 000). Its country is older than
    // DE's time: last stays DE. timeSince is clamped at 0.
    assert.deepEqual(values(s.apply(3, k, { ts: 90_000, amount: 1, country: 'IT' })),
      { c: 3, s: 16.5, m: 5.5, lo: 1, hi: 10, d: 2, country: 'DE', since: 0 });
    // Late (50 000 < 120 000 - 60 000): not applied, counted, read at 50 000 (bucket 0 only).
    assert.deepEqual(values(s.apply(4, k, { ts: 50_000, amount: 1000, merchant: 'z', country: 'US' })),
      { c: 2, s: 15.5, m: 7.75, lo: 5.5, hi: 10, d: 2, country: 'DE', since: 0 });
    assert.equal(late, 1);
    // At the key's own latest time every applied event counts, the late one not at all.
    assert.deepEqual(s.snapshot().get(Buffer.from(k).toString('hex')),
      { c: 4, s: 16.5, m: 5.5, lo: 1, hi: 10, d: 2, country: 'DE', since: 0 });
  });

  test('sums add bucket sums in ascending bucket order, each bucket in apply order', () => {
    // 1e16 + 1 rounds back to 1e16 (ulp 2): the order of additions shows in the result.
    const def = stateDef({ aggregates: [windowed('s', 'sum', 'x', HOUR), windowed('m', 'mean', 'x', HOUR)], allowedLatenessMs: 10 * MIN });
    const s = new PartitionState(def);
    const across = key('across');
    s.apply(0, across, { ts: 2 * MIN, x: 1 });
    s.apply(1, across, { ts: MIN, x: 1 });
    // Read at 0: bucket 0 only.
    assert.equal(values(s.apply(2, across, { ts: 0, x: 1e16 }))['s'], 1e16);
    // Buckets 0, 1, 2 in ascending order: (0 + 1e16) + 1 + 1 = 1e16; in apply order it would be 1e16 + 2.
    assert.deepEqual(s.snapshot().get(Buffer.from(across).toString('hex')), { s: 1e16, m: 1e16 / 3 });
    const within = key('within');
    s.apply(3, within, { ts: 0, x: 1e16 });
    s.apply(4, within, { ts: 1, x: 1 });
    assert.deepEqual(values(s.apply(5, within, { ts: 2, x: 1 })), { s: 1e16, m: 1e16 / 3 });
    const reversed = key('reversed');
    s.apply(6, reversed, { ts: 0, x: 1 });
    s.apply(7, reversed, { ts: 1, x: 1 });
    assert.deepEqual(values(s.apply(8, reversed, { ts: 2, x: 1e16 })), { s: 1e16 + 2, m: (1e16 + 2) / 3 });
  });

  test('a count with a field counts only events where it is present and not null', () => {
    const def = stateDef({ aggregates: [windowed('withDevice', 'count', 'device.id', HOUR), windowed('all', 'count', null, HOUR)] });
    const s = new PartitionState(def);
    const k = key('k');
    s.apply(0, k, { ts: 1, device: { id: 'd1' } });
    s.apply(1, k, { ts: 2, device: { id: null } });
    s.apply(2, k, { ts: 3, device: 'flat' });
    assert.deepEqual(values(s.apply(3, k, { ts: 4, device: { id: 0 } })), { withDevice: 2, all: 4 });
  });
});

describe('the window edge', () => {
  const def = stateDef({ aggregates: [windowed('c', 'count', null, HOUR), windowed('cb', 'count', null, HOUR, { sees: 'before' })] });

  test('an event in bucket 0 still counts at the last ms of bucket 59 (3 599 999)', () => {
    const s = new PartitionState(def);
    s.apply(0, key('k'), { ts: 0 });
    assert.deepEqual(values(s.apply(1, key('k'), { ts: 3_599_999 })), { c: 2, cb: 1 });
  });

  test('and no longer at the first ms of bucket 60 (3 600 000)', () => {
    const s = new PartitionState(def);
    s.apply(0, key('k'), { ts: 59_999 });
    assert.deepEqual(values(s.apply(1, key('k'), { ts: 3_600_000 })), { c: 1, cb: 0 });
  });

  test('an expired bucket is dropped: a late read that would reach it finds nothing', () => {
    const s = new PartitionState(def);
    const k = key('k');
    s.apply(0, k, { ts: 0 });
    // Retention floor: floor((3 660 000 - 60 000) / 60 000) - 60 = 0, so bucket 0 is dropped.
    s.apply(1, k, { ts: 3_660_000 });
    assert.deepEqual(values(s.apply(2, k, { ts: 30_000 })), { c: 0, cb: 0 });
    // Without the second event bucket 0 is retained, and the same read counts it.
    const t = new PartitionState(def);
    t.apply(0, k, { ts: 0 });
    t.apply(1, k, { ts: 3_599_999 });
    assert.deepEqual(values(t.apply(2, k, { ts: 30_000 })), { c: 1, cb: 1 });
  });
});

describe('before and after', () => {
  test('an aggregate that sees before excludes the event; after includes it; timeSince is the same either way', () => {
    const def = stateDef({
      aggregates: [
        windowed('cb', 'count', null, HOUR, { sees: 'before' }), windowed('ca', 'count', null, HOUR),
        windowed('sb', 'sum', 'x', HOUR, { sees: 'before' }), windowed('sa', 'sum', 'x', HOUR),
        last('lb', 'x', 'before'), last('la', 'x'), distinct('db', 'x', HOUR, { sees: 'before' }), timeSince('since'),
      ],
    });
    const s = new PartitionState(def);
    const k = key('k');
    assert.deepEqual(values(s.apply(0, k, { ts: 1000, x: 2 })), { cb: 0, ca: 1, sb: 0, sa: 2, lb: null, la: 2, db: 0, since: null });
    assert.deepEqual(values(s.apply(1, k, { ts: 3500, x: 3 })), { cb: 1, ca: 2, sb: 2, sa: 5, lb: 2, la: 3, db: 1, since: 2.5 });
  });
});

describe('the distinct bound', () => {
  test('a new value is not added while maxDistinct values are retained; it is again once old buckets are dropped', () => {
    let saturated = 0;
    const def = stateDef({ aggregates: [distinct('d', 'm', HOUR, { maxDistinct: 2 })] });
    const s = new PartitionState(def, { onDistinctSaturated: () => { saturated++; } });
    const k = key('k');
    assert.equal(values(s.apply(0, k, { ts: 0, m: 'a' }))['d'], 1);
    assert.equal(values(s.apply(1, k, { ts: 1000, m: 'b' }))['d'], 2);
    assert.equal(values(s.apply(2, k, { ts: 2000, m: 'c' }))['d'], 2);
    assert.equal(saturated, 1);
    assert.equal(values(s.apply(3, k, { ts: 61_000, m: 'a' }))['d'], 2); // retained already: no saturation
    assert.equal(saturated, 1);
    // At 3 720 000 the retention floor is 1: buckets 0 and 1 (a, b, a) are dropped, and c fits.
    assert.equal(values(s.apply(4, k, { ts: 3_720_000, m: 'c' }))['d'], 1);
    assert.equal(values(s.apply(5, k, { ts: 3_720_001, m: 'd' }))['d'], 2);
    assert.equal(values(s.apply(6, k, { ts: 3_720_002, m: 'e' }))['d'], 2);
    assert.equal(saturated, 2);
  });

  test('numbers and booleans count by their String() form; objects and null are ignored', () => {
    const def = stateDef({ aggregates: [distinct('d', 'v', HOUR)] });
    const s = new PartitionState(def);
    const k = key('k');
    for (const [i, v] of [1, '1', true, 'true', null, { a: 1 }, [1], 2.5].entries()) s.apply(i, k, { ts: i, v });
    assert.equal(s.snapshot().get(Buffer.from(k).toString('hex'))?.['d'], 3);
  });

  test('a window read that covers only some retained buckets counts the union of those', () => {
    const def = stateDef({ aggregates: [distinct('d', 'm', 10 * MIN, { bucketMs: MIN })], allowedLatenessMs: 5 * MIN });
    const s = new PartitionState(def);
    const k = key('k');
    s.apply(0, k, { ts: 0, m: 'a' });
    s.apply(1, k, { ts: MIN, m: 'b' });
    s.apply(2, k, { ts: 2 * MIN, m: 'a' });
    // At 11 min the window is buckets 2..11: 'a' (bucket 2) and 'c'; buckets 0 and 1 are retained (lateness) but outside.
    assert.equal(values(s.apply(3, k, { ts: 11 * MIN, m: 'c' }))['d'], 2);
    // Read at 6.5 min (not late: 11 - 5 = 6 min): buckets 0..6 hold a, b, a; bucket 11 (c) is after it.
    assert.equal(values(s.apply(4, k, { ts: 6.5 * MIN }))['d'], 2);
  });
});

describe('event time and keys', () => {
  test('event time by dotted path in seconds, and aggregate fields by dotted path', () => {
    const def = stateDef({ eventTime: { field: 'meta.ts', unit: 's' }, aggregates: [distinct('devices', 'device.id', HOUR), timeSince('since')] });
    const s = new PartitionState(def);
    const k = key('k');
    s.apply(0, k, { meta: { ts: 1.5 }, device: { id: 'x' } });
    assert.deepEqual(values(s.apply(1, k, { meta: { ts: 4 }, device: { id: 'y' } })), { devices: 2, since: 2.5 });
  });

  test('a record without a key, or with an unusable event time, is refused with its code and changes nothing', () => {
    const def = stateDef({ aggregates: [windowed('c', 'count', null, HOUR)] });
    const s = new PartitionState(def);
    const noKey = s.apply(0, null, { ts: 1 });
    assert.ok('error' in noKey && noKey.error.code === StateKeyMissingError.code);
    for (const [i, ts] of [-1, Number.NaN, Number.POSITIVE_INFINITY, '5', null, undefined].entries()) {
      const read = s.apply(i + 1, key('k'), { ts });
      assert.ok('error' in read && read.error.code === StateEventTimeError.code, `ts ${String(ts)}`);
      assert.deepEqual(read.error.details, { field: 'ts' });
    }
    assert.equal(s.keys, 0);
    assert.deepEqual(s.takeChanges(), []);
    assert.equal(s.appliedThrough, 6);
  });

  test('keys are bytes: two keys that differ in one byte keep separate state', () => {
    const def = stateDef({ aggregates: [windowed('c', 'count', null, HOUR)] });
    const s = new PartitionState(def);
    s.apply(0, new Uint8Array([0, 255]), { ts: 1 });
    assert.deepEqual(values(s.apply(1, new Uint8Array([0, 254]), { ts: 2 })), { c: 1 });
    assert.deepEqual(values(s.apply(2, Buffer.from([0, 255]), { ts: 3 })), { c: 2 });
    assert.deepEqual([...s.snapshot().keys()].sort(), ['00fe', '00ff']);
  });
});
