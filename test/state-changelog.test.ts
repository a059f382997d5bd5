/**
 * The changelog: what takeChanges writes, the codec's refusals, restore (round trip, recency order, the
 * fingerprint check) and replay after a crash (no event counted twice, none missed).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Packr } from 'msgpackr';
import { StateChangelogError, META_KEY, decodeMeta } from '../pipeline/state/changelog-codec.js';
import { PartitionState, readState } from '../pipeline/state/partition-state.js';
import type { ChangelogEntry, CompiledState, StateRead, StateValues } from '../pipeline/state/types.js';
import { HOUR, MIN, SEC, distinct, key, last, stateDef, timeSince, windowed } from './helpers/state-def.js';

const packr = new Packr({ useRecords: false });
const hex = (s: string): string => Buffer.from(s).toString('hex');
const name = (e: ChangelogEntry): string => Buffer.from(e.key).toString();

function values(read: StateRead): StateValues {
  assert.ok('values' in read, `expected values, got ${JSON.stringify(read)}`);
  return read.values;
}

const def = stateDef({
  aggregates: [
    windowed('c', 'count', null, 10 * MIN, { bucketMs: MIN }),
    windowed('s', 'sum', 'amount', 10 * MIN, { bucketMs: MIN }),
    windowed('m', 'mean', 'amount', HOUR, { sees: 'before' }),
    windowed('lo', 'min', 'amount', HOUR),
    windowed('hi', 'max', 'amount', HOUR),
    distinct('d', 'merchant', HOUR, { maxDistinct: 3 }),
    last('country', 'country', 'before'),
    timeSince('since'),
  ],
});

interface Rec { readonly offset: number; readonly key: string; readonly event: Readonly<Record<string, unknown>> }

/** A deterministic sequence over four keys, with out-of-order and late events (8 in 100), and a saturated distinct bound. */
function sequence(n: number): Rec[] {
  const out: Rec[] = [];
  let t = 0;
  for (let i = 0; i < n; i++) {
    t += (i * 7919) % 50 * SEC;
    const skew = i % 9 === 0 ? 3 * MIN : i % 5 === 0 ? 20 * SEC : 0;
    out.push({
      offset: i,
      key: `card-${(i * 31) % 4}`,
      event: { ts: Math.max(0, t - skew), amount: i % 7 === 0 ? null : (i * 13) % 97 / 4, merchant: `m${(i * 17) % 5}`, country: i % 3 === 0 ? 'FR' : 'DE' },
    });
  }
  return out;
}

/** Applies `recs`, cutting a block (takeChanges) after each offset in `cuts`; returns each record's read and every entry written. */
function run(state: PartitionState, recs: readonly Rec[], cuts: ReadonlySet<number>): { reads: Map<number, StateRead>; log: ChangelogEntry[] } {
  const reads = new Map<number, StateRead>();
  const log: ChangelogEntry[] = [];
  for (const r of recs) {
    reads.set(r.offset, state.apply(r.offset, key(r.key), r.event));
    if (cuts.has(r.offset)) log.push(...state.takeChanges());
  }
  return { reads, log };
}

const everyTenth = (n: number): Set<number> => new Set(Array.from({ length: n }, (_, i) => i).filter((i) => i % 10 === 9));

describe('what takeChanges writes', () => {
  test('each changed key once, however many events it took, then the meta last; [] when nothing changed', () => {
    const s = new PartitionState(def);
    assert.deepEqual(s.takeChanges(), []);
    for (let i = 0; i < 5; i++) s.apply(i, key(i % 2 === 0 ? 'a' : 'b'), { ts: i * SEC, amount: i });
    const entries = s.takeChanges();
    assert.deepEqual(entries.map(name), ['a', 'b', '\u0000verdict.state.meta']);
    assert.deepEqual(entries[2]?.key, META_KEY);
    assert.deepEqual(decodeMeta(entries[2]?.value as Uint8Array), { appliedThrough: 4, watermark: 4 * SEC, fingerprint: def.fingerprint });
    assert.equal(s.bytes, (entries[0]?.value?.length ?? 0) + (entries[1]?.value?.length ?? 0));
    assert.deepEqual(s.takeChanges(), []);
    s.apply(5, key('b'), { ts: 5 * SEC });
    assert.deepEqual(s.takeChanges().map(name), ['b', '\u0000verdict.state.meta']);
  });

  test('a record with the reserved meta key is refused, not applied', () => {
    const s = new PartitionState(def);
    const read = s.apply(0, META_KEY, { ts: 1 });
    assert.ok('error' in read && read.error.code === 'STATE_KEY_MISSING');
    assert.equal(s.keys, 0);
  });
});

describe('the codec refuses what it cannot read', () => {
  const good = (): ChangelogEntry[] => {
    const s = new PartitionState(def);
    s.apply(0, key('a'), { ts: 1, amount: 2 });
    return s.takeChanges();
  };

  test('a key state of another format version', () => {
    const [a, meta] = good();
    const bumped = { ...(packr.unpack(a?.value as Uint8Array) as Record<string, unknown>), v: 2 };
    assert.throws(() => new PartitionState(def).restore([{ key: key('a'), value: packr.pack(bumped) }, meta as ChangelogEntry]),
      (err: unknown) => err instanceof StateChangelogError && err.code === StateChangelogError.code && err.details['reason'] === 'version');
  });

  test('a meta of another format version', () => {
    const [a] = good();
    const meta = { key: META_KEY, value: packr.pack({ v: 0, o: 0, w: 1, d: def.fingerprint }) };
    assert.throws(() => new PartitionState(def).restore([a as ChangelogEntry, meta]), { code: 'STATE_CHANGELOG_INVALID' });
  });

  test('bytes that are not a state record, and a state whose slots do not fit the definition', () => {
    const [, meta] = good();
    const s = new PartitionState(def);
    assert.throws(() => s.restore([{ key: key('a'), value: new Uint8Array([0xc1]) }, meta as ChangelogEntry]), { code: 'STATE_CHANGELOG_INVALID' });
    assert.equal(s.keys, 0);
    const short = packr.pack({ v: 1, o: 0, t: 1, a: [[]] });
    assert.throws(() => s.restore([{ key: key('a'), value: short }, meta as ChangelogEntry]), { code: 'STATE_CHANGELOG_INVALID' });
  });
});

describe('restore', () => {
  test('round trip: a fresh state restored from the changelog has the same snapshot and reads the same from then on', () => {
    const recs = sequence(120);
    const original = new PartitionState(def);
    const first = run(original, recs.slice(0, 80), everyTenth(80));
    const restored = new PartitionState(def);
    const result = restored.restore(first.log);
    assert.deepEqual(result, { keys: 4, records: first.log.length, discarded: false });
    assert.equal(restored.appliedThrough, 79);
    assert.equal(restored.keys, original.keys);
    assert.equal(restored.bytes, original.bytes);
    assert.deepEqual(restored.snapshot(), original.snapshot());
    assert.deepEqual(readState(def, first.log), original.snapshot());
    const a = run(original, recs.slice(80), everyTenth(120));
    const b = run(restored, recs.slice(80), everyTenth(120));
    assert.deepEqual(b.reads, a.reads);
    assert.deepEqual(restored.snapshot(), original.snapshot());
    assert.deepEqual(b.log, a.log);
  });

  test('recency is rebuilt from lastOffset: the bound then evicts the same key it would have', () => {
    const bounded = stateDef({ aggregates: [windowed('c', 'count', null, HOUR)], maxKeysPerPartition: 3 });
    const s = new PartitionState(bounded);
    for (const [i, k] of ['a', 'b', 'c', 'a'].entries()) s.apply(i, key(k), { ts: i });
    const restored = new PartitionState(bounded);
    restored.restore(s.takeChanges());
    restored.apply(4, key('d'), { ts: 4 });
    assert.deepEqual([...restored.snapshot().keys()].sort(), [hex('a'), hex('c'), hex('d')]);
  });

  test('more keys than the bound allows are evicted least recent first, with tombstones', () => {
    const s = new PartitionState(stateDef({ aggregates: [windowed('c', 'count', null, HOUR)] }));
    for (const [i, k] of ['a', 'b', 'c'].entries()) s.apply(i, key(k), { ts: i });
    let lru = 0;
    const small = new PartitionState(stateDef({ aggregates: [windowed('c', 'count', null, HOUR)], maxKeysPerPartition: 2 }), { onEvict: () => { lru++; } });
    assert.equal(small.restore(s.takeChanges()).keys, 2);
    assert.equal(lru, 1);
    small.apply(3, key('c'), { ts: 3 });
    assert.deepEqual(small.takeChanges().map((e) => [name(e), e.value === null]), [['a', true], ['c', false], ['\u0000verdict.state.meta', false]]);
  });

  test('a changelog written under another definition is discarded, then tombstoned by the next write', () => {
    const s = new PartitionState(def);
    run(s, sequence(30), new Set());
    const oldLog = s.takeChanges();
    const other: CompiledState = stateDef({ aggregates: [windowed('c', 'count', null, HOUR)] });
    const fresh = new PartitionState(other);
    assert.deepEqual(fresh.restore(oldLog), { keys: 0, records: oldLog.length, discarded: true });
    assert.equal(fresh.appliedThrough, -1);
    assert.equal(fresh.keys, 0);
    fresh.apply(30, key('new'), { ts: 1 });
    const next = fresh.takeChanges();
    assert.deepEqual(next.map((e) => [name(e), e.value === null]).sort(),
      [['\u0000verdict.state.meta', false], ['card-0', true], ['card-1', true], ['card-2', true], ['card-3', true], ['new', false]]);
    assert.deepEqual([...readState(other, [...oldLog, ...next]).keys()], [hex('new')]);
  });

  test('key records without any meta are discarded', () => {
    const s = new PartitionState(def);
    s.apply(0, key('a'), { ts: 1 });
    const [a] = s.takeChanges();
    assert.deepEqual(new PartitionState(def).restore([a as ChangelogEntry]), { keys: 0, records: 1, discarded: true });
    assert.deepEqual(new PartitionState(def).restore([]), { keys: 0, records: 0, discarded: false });
  });
});

describe('replay after a crash', () => {
  const recs = sequence(100);

  test('records up to appliedThrough are not applied again; the rest read and end exactly as an uninterrupted run', () => {
    const whole = run(new PartitionState(def), recs, everyTenth(100));
    const before = new PartitionState(def);
    const landed = run(before, recs.slice(0, 57), everyTenth(100)).log; // crash at 57: writes through 49 landed
    let replayed = 0;
    const after = new PartitionState(def, { onReplayed: () => { replayed++; } });
    after.restore(landed);
    assert.equal(after.appliedThrough, 49);
    // Committed offsets lag: consumption resumes at 31.
    const resumed = run(after, recs.slice(31), new Set([59, 62, 99]));
    assert.equal(replayed, 49 - 31 + 1);
    for (let o = 50; o < 100; o++) assert.deepEqual(resumed.reads.get(o), whole.reads.get(o), `offset ${o}`);
    const uninterrupted = new PartitionState(def);
    run(uninterrupted, recs, new Set());
    assert.deepEqual(after.snapshot(), uninterrupted.snapshot());
    assert.deepEqual(readState(def, [...landed, ...resumed.log]), uninterrupted.snapshot());
  });

  test('a write cut short before its meta: keys it holds skip their records up to their lastOffset', () => {
    const whole = new PartitionState(def);
    const wholeRun = run(whole, recs, new Set([39]));
    const first = new PartitionState(def);
    const log = run(first, recs.slice(0, 40), new Set([19])).log;
    const partial = first.takeChanges(); // the write of the block 20..39
    assert.ok(partial.length > 2);
    let replayed = 0;
    const after = new PartitionState(def, { onReplayed: () => { replayed++; } });
    after.restore([...log, ...partial.slice(0, 1)]); // one key's state past O = 19, no meta
    assert.equal(after.appliedThrough, 19);
    const resumed = run(after, recs.slice(20), new Set());
    const carried = Buffer.from((partial[0] as ChangelogEntry).key).toString();
    const carriedOffsets = recs.filter((r) => r.offset >= 20 && r.offset < 40 && r.key === carried).length;
    assert.equal(replayed, carriedOffsets);
    for (let o = 40; o < 100; o++) assert.deepEqual(resumed.reads.get(o), wholeRun.reads.get(o), `offset ${o}`);
    assert.deepEqual(after.snapshot(), whole.snapshot());
  });

  test('a record delivered twice in one session is not applied twice', () => {
    const s = new PartitionState(def);
    const first = values(s.apply(0, key('a'), { ts: 1000, amount: 5 }));
    assert.equal(first['c'], 1);
    assert.equal(values(s.apply(0, key('a'), { ts: 1000, amount: 5 }))['c'], 1);
    assert.equal(values(s.apply(1, key('a'), { ts: 2000, amount: 5 }))['c'], 2);
  });
});
