/**
 * The changelog's records: a key's state, and the meta record that closes each partition's write.
 *
 * Both are plain MessagePack maps (no msgpackr records, so any MessagePack reader can inspect them):
 * - key state, format 1: `{ v: 1, o: lastOffset, t: maxTs, a: [slot per aggregate, declaration order] }`,
 *   a slot being: count/sum/min/max the numbers `index, value, ...` and mean `index, n, sum, ...` as one
 *   bin of float64 little-endian (8 bytes a number: one copy to pack, where MessagePack numbers cost one
 *   encoding each; a read needs `numpy.frombuffer(b, '<f8')` or `struct`); distinct
 *   `[index, [values], ...]`; last `[value, eventTime]` or null; timeSince null.
 * - meta, format 1, under the reserved key UTF-8 "\u0000verdict.state.meta":
 *   `{ v: 1, o: appliedThrough, w: partition watermark (ms; -Infinity before any applied event), d: fingerprint }`.
 * Slots are positional: a changelog is restored only under the same definition (the meta's fingerprint).
 *
 * A record of another format version, or one that does not parse, is refused with StateChangelogError:
 * state is never guessed.
 */
import { Packr } from 'msgpackr';
import { StateChangelogError } from '../../core/errors.js';

export { StateChangelogError };
import type { AggregateOps, Slot } from './aggregates.js';
import { startEncoding } from './buckets.js';
import { KeyState } from './key-state.js';

/** The format version this code writes and the only one it reads. */
export const STATE_FORMAT_VERSION = 1;

/** The reserved record key of the meta record (UTF-8 "\u0000verdict.state.meta"). */
export const META_KEY: Uint8Array = new Uint8Array(Buffer.from('\u0000verdict.state.meta', 'utf8'));


/** What the meta record says about its partition's write. */
export interface StateMeta {
  /** The last input offset whose effects the write covers. */
  readonly appliedThrough: number;
  /** The partition's greatest applied event time (ms) at the write; -Infinity when none. */
  readonly watermark: number;
  /** The state definition's fingerprint (CompiledState.fingerprint). */
  readonly fingerprint: string;
}

const packr = new Packr({ useRecords: false });

/** Whether a record key is the reserved meta key. */
export function isMetaKey(key: Uint8Array): boolean {
  if (key.length !== META_KEY.length) return false;
  for (let i = 0; i < key.length; i++) if (key[i] !== META_KEY[i]) return false;
  return true;
}

export function encodeKeyState(ops: readonly AggregateOps[], ks: KeyState): Uint8Array {
  startEncoding();
  const a: unknown[] = new Array<unknown>(ops.length);
  for (let i = 0; i < ops.length; i++) a[i] = (ops[i] as AggregateOps).encode(ks.slots[i] as Slot);
  return packr.pack({ v: STATE_FORMAT_VERSION, o: ks.lastOffset, t: ks.maxTs, a });
}

/** Throws StateChangelogError for another version or a malformed record. */
export function decodeKeyState(ops: readonly AggregateOps[], bytes: Uint8Array): KeyState {
  const rec = unpackMap(bytes, 'key state');
  const { o, t, a } = rec;
  if (typeof o !== 'number' || !Number.isInteger(o) || typeof t !== 'number' || !Number.isFinite(t) || !Array.isArray(a) || a.length !== ops.length) {
    throw malformed('key state', 'fields o, t, a do not match the definition');
  }
  const slots: Slot[] = new Array<Slot>(ops.length);
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as AggregateOps;
    const slot = op.decode(a[i]);
    if (slot === undefined) throw malformed('key state', `slot of aggregate ${op.name} is malformed`);
    slots[i] = slot;
  }
  const ks = new KeyState(slots);
  ks.maxTs = t;
  ks.lastOffset = o;
  return ks;
}

export function encodeMeta(meta: StateMeta): Uint8Array {
  return packr.pack({ v: STATE_FORMAT_VERSION, o: meta.appliedThrough, w: meta.watermark, d: meta.fingerprint });
}

/** Throws StateChangelogError for another version or a malformed record. */
export function decodeMeta(bytes: Uint8Array): StateMeta {
  const rec = unpackMap(bytes, 'meta');
  const { o, w, d } = rec;
  if (typeof o !== 'number' || !Number.isInteger(o) || typeof w !== 'number' || Number.isNaN(w) || typeof d !== 'string') {
    throw malformed('meta', 'fields o, w, d are missing or ill-typed');
  }
  return { appliedThrough: o, watermark: w, fingerprint: d };
}

function unpackMap(bytes: Uint8Array, what: string): Record<string, unknown> {
  let rec: unknown;
  try {
    rec = packr.unpack(bytes);
  } catch (cause) {
    throw new StateChangelogError(`changelog ${what} record is not MessagePack`, { cause, details: { reason: 'decode' } });
  }
  if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) throw malformed(what, 'not a map');
  const v = (rec as Record<string, unknown>)['v'];
  if (v !== STATE_FORMAT_VERSION) {
    throw new StateChangelogError(`changelog ${what} record has format version ${String(v)}; this Verdict reads only ${STATE_FORMAT_VERSION}`, {
      details: { reason: 'version', version: typeof v === 'number' ? v : String(v) },
    });
  }
  return rec as Record<string, unknown>;
}

function malformed(what: string, why: string): StateChangelogError {
  return new StateChangelogError(`changelog ${what} record is malformed: ${why}`, { details: { reason: 'malformed' } });
}
