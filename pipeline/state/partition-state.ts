/**
 * One input partition's per-key state: every key's aggregates, applied in offset order, written to and
 * restored from the partition's changelog. Pure: no clock (event time is data), no I/O, no metrics
 * (the caller counts through the callbacks and reads the gauges).
 *
 * Handling one record (offset order within the partition; t = event time, ms; W = the partition's greatest
 * applied event time before this record; O = `appliedThrough` before it):
 * 0. invalid: a null key (or the reserved meta key) -> STATE_KEY_MISSING; a time that is not a finite
 *    number >= 0 -> STATE_EVENT_TIME_INVALID. Not applied; nothing changes but O.
 *    replayed: offset <= max(O, key.lastOffset) -> not applied again (`onReplayed`); values read at t from
 *    the state as it stands (every aggregate, whatever its `sees`); W rises to t (a no-op unless the key's
 *    state came from a write after the last meta, where it is what the record did the first time).
 * 1. expired: the key exists and max(t, W) - key.maxTs > idleAfterMs -> evicted ("idle") first.
 * 2. late: the key exists and t < key.maxTs - allowedLatenessMs -> not applied (`onLate`); values read at t.
 * 3. applied: a new key is inserted (at maxKeysPerPartition: idle keys are swept first, then the least
 *    recently applied key is evicted, "lru"); the aggregates that see `before` (and timeSince) are read at
 *    t, the event applied, those that see `after` read at t; the key becomes the most recent; W = max(W, t).
 * Window, bucket and aggregate semantics: buckets.ts, distinct.ts, aggregates.ts.
 *
 * Idle keys: a key with maxTs < W - idleAfterMs can never be read again (rule 1 resets it at its next
 * record), so sweeping it is invisible. Sweeps run at `takeChanges` and before an insertion at the key
 * bound, so the bound counts only keys that can still be read: which key the bound evicts does not depend
 * on where blocks (and so changelog writes) end. (Choice beyond the contract: mirror it in a parity script
 * that exercises the bound.)
 *
 * THE EXACTNESS INVARIANT. After `takeChanges()` returns entries E with meta O, the state equals the state
 * of an uninterrupted run after the record at offset O, and restoring (the changelog's records up to and
 * including E's meta) rebuilds exactly it: every key's buckets, maxTs, lastOffset, last value, the
 * partition's W and O, and the keys' recency order (by lastOffset, which is the order of last application).
 * The stream writes E only after the outcomes of every record <= O are acknowledged, and commits offsets
 * only after E is acknowledged; so after a crash, consumption resumes at some offset <= O + 1, and:
 * - a record <= O was applied (or found late) before, and its outcome is written: rule 0 skips it, so
 *   nothing is counted twice;
 * - a record > O is applied to exactly the state the uninterrupted run had at that point, so it sees the
 *   same values and leaves the same state: nothing is missed, and its first decision is the same.
 * key.lastOffset covers records delivered twice in one session, and a key whose state the changelog
 * holds past O (a write cut short before its meta). Exactness assumes each write lands whole or not at
 * all (one produce of the partition's records: Kafka appends a batch atomically): from a cut write, key
 * states are safe, but a tombstone that landed without its meta loses a key that records after O still
 * need, and the key bound's order can differ.
 *
 * `appliedThrough` is the greatest offset handled (applied, late, replayed or invalid) in memory: O after
 * a restore, and what the next meta carries.
 */
import { StateEventTimeError, StateKeyMissingError } from '../../core/errors.js';
import { compileAggregates, type AggregateOps } from './aggregates.js';
import { decodeKeyState, decodeMeta, encodeKeyState, encodeMeta, isMetaKey, META_KEY } from './changelog-codec.js';
import { eventTimeReader } from './event-fields.js';
import { ExpiryHeap, type HeapEntry } from './expiry-heap.js';
import { applyEvent, KeyState, readAt, toValues } from './key-state.js';
import type { ChangelogEntry, CompiledState, StateRead, StateValue, StateValues } from './types.js';

type Event = Readonly<Record<string, unknown>>;

/** Why a key left the state: idle past `idleAfterMs`, or the least recently applied at the key bound. */
export type EvictReason = 'idle' | 'lru';

/** Counters the caller keeps (metrics): each is called once per occurrence. */
export interface PartitionStateOptions {
  onEvict?(reason: EvictReason): void;
  onLate?(): void;
  onReplayed?(): void;
  onDistinctSaturated?(): void;
}

/** What `restore` found. `discarded`: records existed but none was restored (another fingerprint, or no meta). */
export interface RestoreResult {
  readonly keys: number;
  readonly records: number;
  readonly discarded: boolean;
}

interface Entry extends HeapEntry {
  /** The key's bytes (a copy: the caller's buffer may be reused). */
  readonly key: Uint8Array;
  /** The key's bytes as a latin1 string: the map key. */
  readonly id: string;
  readonly state: KeyState;
  /** Size of its last encoding, bytes (0 until first encoded). */
  bytes: number;
  /** Changed since its last encoding. */
  dirty: boolean;
}

function keyId(key: Uint8Array): string {
  return (Buffer.isBuffer(key) ? key : Buffer.from(key.buffer, key.byteOffset, key.byteLength)).toString('latin1');
}

export class PartitionState {
  readonly #def: CompiledState;
  readonly #opts: PartitionStateOptions;
  readonly #ops: readonly AggregateOps[];
  readonly #eventTime: (event: Event) => number;
  /** What a key without state reads as (never written to). */
  readonly #empty: KeyState;
  /** Each aggregate's value for the record in hand: reused, so reads allocate nothing. */
  readonly #out: StateValue[];
  readonly #keyMissing: StateRead;
  readonly #keyReserved: StateRead;
  readonly #timeInvalid: StateRead;
  /** Keys, least recently applied first (a Map keeps insertion order: applying re-inserts). */
  readonly #keys = new Map<string, Entry>();
  readonly #heap = new ExpiryHeap<Entry>();
  /** Keys changed or evicted since the last takeChanges: id -> key bytes. */
  readonly #dirty = new Map<string, Uint8Array>();
  #watermark = Number.NEGATIVE_INFINITY;
  #through = -1;
  #bytes = 0;

  /** `def` compiled by config/compile-state.ts. */
  constructor(def: CompiledState, opts: PartitionStateOptions = {}) {
    this.#def = def;
    this.#opts = opts;
    this.#ops = compileAggregates(def, new Set());
    this.#eventTime = eventTimeReader(def);
    this.#empty = KeyState.empty(this.#ops);
    this.#out = new Array<StateValue>(this.#ops.length).fill(null);
    this.#keyMissing = { error: { code: StateKeyMissingError.code, message: 'record has no key: per-key state is keyed by the record key' } };
    this.#keyReserved = { error: { code: StateKeyMissingError.code, message: 'record key is the changelog\'s reserved meta key', details: { reserved: true } } };
    const field = def.eventTime.field;
    this.#timeInvalid = {
      error: { code: StateEventTimeError.code, message: `event time field "${field}" is missing or not a finite, non-negative number`, details: { field } },
    };
  }

  /** Keys held. */
  get keys(): number {
    return this.#keys.size;
  }

  /** The sum of each held key's last encoded size, bytes (a key not yet encoded counts 0). */
  get bytes(): number {
    return this.#bytes;
  }

  /** The greatest offset handled in memory (-1: none): after a restore, the changelog's O. */
  get appliedThrough(): number {
    return this.#through;
  }

  /** Handles the record at `offset` (offset order); returns the values the event saw, or why state could not be applied. */
  apply(offset: number, key: Uint8Array | null, event: Event): StateRead {
    const through = this.#through;
    if (offset > through) this.#through = offset;
    if (key === null) return this.#keyMissing;
    if (isMetaKey(key)) return this.#keyReserved;
    const t = this.#eventTime(event);
    if (Number.isNaN(t)) return this.#timeInvalid;
    const id = keyId(key);
    let entry = this.#keys.get(id);
    const out = this.#out;
    const w = this.#watermark;
    if (offset <= through || (entry !== undefined && offset <= entry.state.lastOffset)) {
      this.#opts.onReplayed?.();
      readAt(this.#ops, entry?.state ?? this.#empty, t, out);
      if (t > w) this.#watermark = t;
      return { values: toValues(this.#ops, out) };
    }
    if (entry !== undefined && Math.max(t, w) - entry.state.maxTs > this.#def.idleAfterMs) {
      this.#evict(entry, 'idle');
      entry = undefined;
    }
    if (entry !== undefined && t < entry.state.maxTs - this.#def.allowedLatenessMs) {
      this.#opts.onLate?.();
      readAt(this.#ops, entry.state, t, out);
      return { values: toValues(this.#ops, out) };
    }
    if (entry === undefined) {
      entry = this.#insert(id, key, t);
    } else {
      this.#keys.delete(id);
      this.#keys.set(id, entry);
    }
    const saturated = applyEvent(this.#ops, entry.state, offset, t, event, out);
    for (let i = 0; i < saturated; i++) this.#opts.onDistinctSaturated?.();
    if (t > w) this.#watermark = t;
    if (!entry.dirty) {
      entry.dirty = true;
      this.#dirty.set(id, entry.key);
    }
    return { values: toValues(this.#ops, out) };
  }

  /**
   * The changelog entries since the last call: idle keys swept, then each changed key's state (encoded
   * once, however many events it took) or a tombstone for an evicted key, then the meta record last.
   * [] when no key changed.
   */
  takeChanges(): ChangelogEntry[] {
    this.#sweep(this.#watermark - this.#def.idleAfterMs);
    if (this.#dirty.size === 0) return [];
    const entries: ChangelogEntry[] = [];
    for (const [id, key] of this.#dirty) {
      const e = this.#keys.get(id);
      if (e === undefined) {
        entries.push({ key, value: null });
        continue;
      }
      const value = encodeKeyState(this.#ops, e.state);
      this.#bytes += value.length - e.bytes;
      e.bytes = value.length;
      e.dirty = false;
      entries.push({ key: e.key, value });
    }
    this.#dirty.clear();
    entries.push({ key: META_KEY, value: encodeMeta({ appliedThrough: this.#through, watermark: this.#watermark, fingerprint: this.#def.fingerprint }) });
    return entries;
  }

  /**
   * Replaces the state with the changelog's: `entries` is the partition read from its start to its end;
   * the last record per key wins; the last meta gives O and W. A meta of another fingerprint, or key
   * records with no meta at all, discards everything (state empty, O = -1; the caller logs it; the next
   * takeChanges tombstones the discarded keys and writes this definition's meta). Keys past
   * the key bound are evicted least recent first ("lru", tombstones at the next takeChanges).
   * Throws StateChangelogError for a record of another format version or a malformed one (state left empty).
   */
  restore(entries: Iterable<ChangelogEntry>): RestoreResult {
    this.#reset();
    const latest = new Map<string, ChangelogEntry>();
    let meta: Uint8Array | null = null;
    let records = 0;
    for (const e of entries) {
      records++;
      if (isMetaKey(e.key)) {
        if (e.value !== null) meta = e.value;
      } else {
        latest.set(keyId(e.key), e);
      }
    }
    const m = meta === null ? null : decodeMeta(meta);
    if (m === null || m.fingerprint !== this.#def.fingerprint) {
      // The records stay in the topic: tombstone them in the next write, so a later restore under this
      // definition's meta never reads a state written under another.
      for (const [id, e] of latest) if (e.value !== null) this.#dirty.set(id, new Uint8Array(e.key));
      return { keys: 0, records, discarded: latest.size > 0 || m !== null };
    }
    const restored: Entry[] = [];
    let bytes = 0;
    for (const [id, e] of latest) {
      if (e.value === null) continue;
      const state = decodeKeyState(this.#ops, e.value);
      restored.push({ key: new Uint8Array(e.key), id, state, bytes: e.value.length, dirty: false, heapTs: 0, heapPos: -1 });
      bytes += e.value.length;
    }
    restored.sort((a, b) => a.state.lastOffset - b.state.lastOffset);
    for (const e of restored) {
      this.#keys.set(e.id, e);
      this.#heap.push(e, e.state.maxTs);
    }
    this.#bytes = bytes;
    this.#through = m.appliedThrough;
    this.#watermark = m.watermark;
    while (this.#keys.size > this.#def.maxKeysPerPartition) this.#evictLeastRecent();
    return { keys: this.#keys.size, records, discarded: false };
  }

  /**
   * Every key's values read at its own maxTs after its last event (every aggregate as `after`), by key in
   * hex, least recently applied first. Keys that can no longer be read (idle: maxTs < W - idleAfterMs,
   * not yet swept) are left out, so the snapshot does not depend on when sweeps ran. For tests.
   */
  snapshot(): Map<string, StateValues> {
    const snap = new Map<string, StateValues>();
    const out = new Array<StateValue>(this.#ops.length);
    const idleBelow = this.#watermark - this.#def.idleAfterMs;
    for (const e of this.#keys.values()) {
      if (e.state.maxTs < idleBelow) continue;
      readAt(this.#ops, e.state, e.state.maxTs, out);
      snap.set(Buffer.from(e.key).toString('hex'), toValues(this.#ops, out));
    }
    return snap;
  }

  #insert(id: string, key: Uint8Array, t: number): Entry {
    if (this.#keys.size >= this.#def.maxKeysPerPartition) {
      this.#sweep(this.#watermark - this.#def.idleAfterMs);
      while (this.#keys.size >= this.#def.maxKeysPerPartition) this.#evictLeastRecent();
    }
    const entry: Entry = { key: new Uint8Array(key), id, state: KeyState.empty(this.#ops), bytes: 0, dirty: false, heapTs: 0, heapPos: -1 };
    this.#keys.set(id, entry);
    // t bounds the key's maxTs from below once the event is applied (before any sweep can look).
    this.#heap.push(entry, t);
    return entry;
  }

  /** Evicts every key with maxTs < threshold ("idle"). */
  #sweep(threshold: number): void {
    for (let top = this.#heap.peek(); top !== undefined && top.heapTs < threshold; top = this.#heap.peek()) {
      if (top.state.maxTs < threshold) this.#evict(top, 'idle');
      else this.#heap.refileTop(top.state.maxTs);
    }
  }

  #evictLeastRecent(): void {
    const first = this.#keys.values().next();
    if (first.done === true) return;
    this.#evict(first.value, 'lru');
  }

  #evict(e: Entry, reason: EvictReason): void {
    this.#keys.delete(e.id);
    this.#heap.remove(e);
    this.#bytes -= e.bytes;
    this.#dirty.set(e.id, e.key);
    this.#opts.onEvict?.(reason);
  }

  #reset(): void {
    this.#keys.clear();
    this.#heap.clear();
    this.#dirty.clear();
    this.#watermark = Number.NEGATIVE_INFINITY;
    this.#through = -1;
    this.#bytes = 0;
  }
}

/** The values every key of a changelog would report (`snapshot()` of a fresh PartitionState restored from `entries`). */
export function readState(def: CompiledState, entries: Iterable<ChangelogEntry>): Map<string, StateValues> {
  const state = new PartitionState(def);
  state.restore(entries);
  return state.snapshot();
}
