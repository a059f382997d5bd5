/**
 * The exactness invariant as a property (fast-check): random event sequences over a few keys (out of
 * order, late, idle gaps, the key bound, the distinct bound, invalid records), processed in random blocks
 * with a crash at a random point, then restored from the changelog writes that landed and resumed from a
 * random committed offset with other block boundaries. The restarted run must read, for every record past
 * appliedThrough, exactly what an uninterrupted run reads, and end with exactly its state, down to the
 * changelog bytes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { decodeMeta, isMetaKey } from '../pipeline/state/changelog-codec.js';
import { PartitionState } from '../pipeline/state/partition-state.js';
import type { ChangelogEntry, StateRead } from '../pipeline/state/types.js';
import { SEC, distinct, last, stateDef, timeSince, windowed } from './helpers/state-def.js';

const def = stateDef({
  aggregates: [
    windowed('c', 'count', null, 10 * SEC, { bucketMs: SEC }),
    windowed('cf', 'count', 'amount', 10 * SEC, { bucketMs: 2 * SEC, sees: 'before' }),
    windowed('s', 'sum', 'amount', 10 * SEC, { bucketMs: SEC }),
    windowed('m', 'mean', 'amount', 20 * SEC, { bucketMs: 5 * SEC }),
    windowed('lo', 'min', 'amount', 10 * SEC, { bucketMs: SEC, sees: 'before' }),
    windowed('hi', 'max', 'amount', 10 * SEC, { bucketMs: SEC }),
    distinct('d', 'merchant', 10 * SEC, { bucketMs: SEC, maxDistinct: 2 }),
    last('lb', 'country', 'before'),
    last('la', 'country'),
    timeSince('since'),
  ],
  allowedLatenessMs: 3 * SEC,
  idleAfterMs: 20 * SEC,
  maxKeysPerPartition: 3,
});

interface Rec { readonly key: Uint8Array | null; readonly event: Readonly<Record<string, unknown>> }

const step = fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 0, max: 3000 }) }, { weight: 1, arbitrary: fc.constant(25_000) });
// Mostly in order; some out of order or late; a few far behind (a new key that is idle on arrival).
const back = fc.oneof(
  { weight: 8, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 0, max: 6000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 15_000, max: 30_000 }) },
);
const draw = fc.record({
  key: fc.oneof({ weight: 20, arbitrary: fc.constantFrom('a', 'b', 'c', 'd', 'e') }, { weight: 1, arbitrary: fc.constant(null) }),
  step, back,
  badTime: fc.oneof({ weight: 30, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  amount: fc.oneof(fc.integer({ min: -50, max: 50 }), fc.double(), fc.constant(null), fc.constant('x')),
  merchant: fc.option(fc.constantFrom('m1', 'm2', 'm3', 'm4', 'm5', 7, true)),
  country: fc.option(fc.constantFrom('FR', 'DE', 'IT')),
});

/** Event times from a running clock: steps forward (now and then an idle gap), some events set back (out of order or late). */
type Draw = typeof draw extends fc.Arbitrary<infer T> ? T : never;

function records(draws: readonly Draw[]): Rec[] {
  let clock = 0;
  return draws.map((d) => {
    clock += d.step;
    const ts = d.badTime ? -1 : Math.max(0, clock - d.back);
    return {
      key: d.key === null ? null : new Uint8Array(Buffer.from(d.key)),
      event: { ts, amount: d.amount, ...(d.merchant === null ? {} : { merchant: d.merchant }), ...(d.country === null ? {} : { country: d.country }) },
    };
  });
}

/** Applies records from..to-1 (offset = index), cutting a block after each offset in `cuts` and at the end when `flush`. */
function run(state: PartitionState, recs: readonly Rec[], from: number, to: number, cuts: ReadonlySet<number>, flush: boolean) {
  const reads = new Map<number, StateRead>();
  const log: ChangelogEntry[] = [];
  for (let o = from; o < to; o++) {
    const r = recs[o] as Rec;
    reads.set(o, state.apply(o, r.key, r.event));
    if (cuts.has(o)) log.push(...state.takeChanges());
  }
  if (flush) log.push(...state.takeChanges());
  return { reads, log };
}

/** The compacted changelog: each key's last non-tombstone value, hex -> hex (tombstoned keys absent). */
function compacted(log: readonly ChangelogEntry[]): Map<string, string> {
  const latest = new Map<string, string | null>();
  for (const e of log) if (!isMetaKey(e.key)) latest.set(Buffer.from(e.key).toString('hex'), e.value === null ? null : Buffer.from(e.value).toString('hex'));
  return new Map([...latest].filter((kv): kv is [string, string] => kv[1] !== null).sort(([a], [b]) => a.localeCompare(b)));
}

function lastMeta(log: readonly ChangelogEntry[]): number {
  for (let i = log.length - 1; i >= 0; i--) {
    const e = log[i] as ChangelogEntry;
    if (isMetaKey(e.key) && e.value !== null) return decodeMeta(e.value).appliedThrough;
  }
  return -1;
}

const cutSet = (flags: readonly boolean[]): Set<number> => new Set(flags.flatMap((f, i) => (f ? [i] : [])));

describe('restore and replay equal an uninterrupted run', () => {
  test('for random sequences, crash points, block boundaries and committed offsets', () => {
    const scenario = fc.record({
      draws: fc.array(draw, { minLength: 1, maxLength: 90 }),
      cutsBefore: fc.array(fc.boolean(), { minLength: 90, maxLength: 90 }),
      cutsAfter: fc.array(fc.boolean(), { minLength: 90, maxLength: 90 }),
      crash: fc.double({ min: 0, max: 1, noNaN: true }),
      resume: fc.double({ min: 0, max: 1, noNaN: true }),
    });
    let replays = 0;
    // What the runs exercised, so the property cannot pass vacuously.
    const seen = { idle: 0, lru: 0, late: 0, saturated: 0, lruAfterRestore: 0 };
    const counting = {
      onEvict: (reason: 'idle' | 'lru') => { seen[reason]++; },
      onLate: () => { seen.late++; },
      onDistinctSaturated: () => { seen.saturated++; },
    };
    fc.assert(fc.property(scenario, (sc) => {
      const recs = records(sc.draws);
      const n = recs.length;
      const uninterrupted = new PartitionState(def, counting);
      const whole = run(uninterrupted, recs, 0, n, cutSet(sc.cutsBefore), true);

      // Crash after `crash` records: the writes of the blocks cut before it landed, nothing after.
      const crashAt = Math.min(n, Math.floor(sc.crash * (n + 1)));
      const landed = run(new PartitionState(def), recs, 0, crashAt, cutSet(sc.cutsBefore), false).log;
      const o = lastMeta(landed);
      const replayed = new Set<number>();
      let current = -1;
      const restarted = new PartitionState(def, {
        onReplayed: () => { replayed.add(current); },
        onEvict: (reason) => { if (reason === 'lru' && restarted.appliedThrough > o) seen.lruAfterRestore++; },
      });
      restarted.restore(landed);
      assert.equal(restarted.appliedThrough, o);
      // Consumption resumes at a committed offset at or before O + 1.
      const from = Math.min(o + 1, Math.floor(sc.resume * (o + 2)));
      const reads = new Map<number, StateRead>();
      const log: ChangelogEntry[] = [];
      const cuts = cutSet(sc.cutsAfter);
      for (current = from; current < n; current++) {
        const r = recs[current] as Rec;
        reads.set(current, restarted.apply(current, r.key, r.event));
        if (cuts.has(current)) log.push(...restarted.takeChanges());
      }
      log.push(...restarted.takeChanges());

      for (let i = from; i < n; i++) {
        const keyed = recs[i]?.key !== null && recs[i]?.event['ts'] !== -1;
        assert.equal(replayed.has(i), keyed && i <= o, `offset ${i} replayed iff keyed and <= O (${o})`);
        if (i > o) assert.deepEqual(reads.get(i), whole.reads.get(i), `offset ${i}`);
      }
      replays += replayed.size;
      assert.deepEqual(restarted.snapshot(), uninterrupted.snapshot());
      assert.equal(restarted.keys, uninterrupted.keys);
      assert.equal(restarted.appliedThrough, uninterrupted.appliedThrough);
      assert.deepEqual(compacted([...landed, ...log]), compacted(whole.log));
    }), { numRuns: 600 });
    assert.ok(replays > 0, 'some runs replayed records');
    for (const [what, count] of Object.entries(seen)) assert.ok(count > 0, `some runs had ${what}`);
  });
});
