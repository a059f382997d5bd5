/**
 * The declared aggregates, compiled once per state definition into operations over a key's slots (one
 * slot per aggregate, in declaration order). The operations hold no per-key data: a key's state is only
 * its slots, so it encodes as is (changelog-codec.ts) and nothing is allocated per key and aggregate
 * beyond the slot itself.
 *
 * What each op accepts from an event (anything else is ignored by that aggregate, the event still applied):
 * - count: every applied event; with `field`, only where the field is present and not null;
 * - sum, mean, min, max: a finite number;
 * - distinct: a string, number or boolean (by String());
 * - last: a string, number or boolean (an object or array field leaves it unchanged, like null);
 * - timeSince: nothing (it reads the key's greatest event time).
 */
import { addNumeric, bucketOf, decodeNumeric, dropThrough, encodeNumeric, makeWindow, readNumeric, retentionFloor, strideOf, windowLow, type NumericOp } from './buckets.js';
import { addDistinct, decodeDistinct, distinctForm, dropDistinct, emptyDistinct, encodeDistinct, readDistinct, type DistinctSlot } from './distinct.js';
import { fieldGetter } from './event-fields.js';
import type { CompiledAggregate, CompiledState, StateValue } from './types.js';

type Event = Readonly<Record<string, unknown>>;

/** The value `last` holds, and the event time it came with (a later-or-equal time replaces it). */
export interface LastSlot {
  value: string | number | boolean;
  t: number;
}

/** One aggregate's per-key state: numeric buckets (flat), distinct buckets, the last value, or nothing. */
export type Slot = number[] | DistinctSlot | LastSlot | null;

export interface AggregateOps {
  readonly name: string;
  /** Read before the event is applied (`sees: before`, and timeSince, which reads the same either way). */
  readonly readsBefore: boolean;
  /** A fresh key's slot. */
  create(): Slot;
  /** Applies one event at time t; `maxTs` is the key's greatest event time including it. Returns true when the distinct bound kept a value out. */
  apply(slot: Slot, t: number, event: Event, maxTs: number): { slot: Slot; saturated: boolean };
  /** The value read at t from a key whose greatest event time is maxTs (-Infinity: no applied event). */
  read(slot: Slot, t: number, maxTs: number): StateValue;
  /** The changelog form of a slot (msgpack-able). */
  encode(slot: Slot): unknown;
  /** A slot from its changelog form; undefined when malformed. */
  decode(wire: unknown): Slot | undefined;
}

const NOT_SATURATED = { slot: null, saturated: false };

/** Compiles every aggregate of `def` (declaration order). `scratch` is the distinct reads' reused union set. */
export function compileAggregates(def: CompiledState, scratch: Set<string>): AggregateOps[] {
  return def.aggregates.map((a) => compileOne(a, def.allowedLatenessMs, scratch));
}

function compileOne(a: CompiledAggregate, latenessMs: number, scratch: Set<string>): AggregateOps {
  switch (a.op) {
    case 'count':
    case 'sum':
    case 'mean':
    case 'min':
    case 'max':
      return numericOps(a.name, a.op, a.field, a.sees === 'before', makeWindow(a.windowMs, a.bucketMs, latenessMs));
    case 'distinct':
      return distinctOps(a.name, a.field, a.maxDistinct, a.sees === 'before', makeWindow(a.windowMs, a.bucketMs, latenessMs), scratch);
    case 'last':
      return lastOps(a.name, a.field, a.sees === 'before');
    case 'timeSince':
      return timeSinceOps(a.name);
  }
}

function numericOps(name: string, op: NumericOp, field: string | null, readsBefore: boolean, w: ReturnType<typeof makeWindow>): AggregateOps {
  const get = field === null ? null : fieldGetter(field);
  const stride = strideOf(op);
  const result = { slot: null as Slot, saturated: false };
  return {
    name, readsBefore,
    create: () => [],
    apply(slot, t, event, maxTs) {
      const data = slot as number[];
      dropThrough(data, stride, retentionFloor(w, maxTs));
      if (op === 'count') {
        const v = get === null ? true : get(event);
        if (v !== undefined && v !== null) addNumeric(op, data, bucketOf(w, t), 0);
      } else {
        const v = (get as (e: Event) => unknown)(event);
        if (typeof v === 'number' && Number.isFinite(v)) addNumeric(op, data, bucketOf(w, t), v);
      }
      result.slot = data;
      return result;
    },
    read: (slot, t, maxTs) => readNumeric(op, slot as number[], windowLow(w, t, maxTs), bucketOf(w, t)),
    encode: (slot) => encodeNumeric(slot as number[]),
    decode: (wire) => decodeNumeric(wire, stride),
  };
}

function distinctOps(
  name: string, field: string, maxDistinct: number, readsBefore: boolean, w: ReturnType<typeof makeWindow>, scratch: Set<string>,
): AggregateOps {
  const get = fieldGetter(field);
  const result = { slot: null as Slot, saturated: false };
  return {
    name, readsBefore,
    create: () => emptyDistinct(),
    apply(slot, t, event, maxTs) {
      const s = slot as DistinctSlot;
      dropDistinct(s, retentionFloor(w, maxTs));
      const v = distinctForm(get(event));
      result.slot = s;
      result.saturated = v !== null && !addDistinct(s, bucketOf(w, t), v, maxDistinct);
      return result;
    },
    read: (slot, t, maxTs) => readDistinct(slot as DistinctSlot, windowLow(w, t, maxTs), bucketOf(w, t), scratch),
    encode: (slot) => encodeDistinct(slot as DistinctSlot),
    decode: (wire) => decodeDistinct(wire) ?? undefined,
  };
}

function lastOps(name: string, field: string, readsBefore: boolean): AggregateOps {
  const get = fieldGetter(field);
  const result = { slot: null as Slot, saturated: false };
  return {
    name, readsBefore,
    create: () => null,
    apply(slot, t, event) {
      const v = get(event);
      const s = slot as LastSlot | null;
      result.slot = s;
      if (typeof v !== 'number' && typeof v !== 'string' && typeof v !== 'boolean') return result;
      const value = typeof v === 'number' ? v + 0 : v; // -0 as 0: see event-fields.ts
      if (s === null) result.slot = { value, t };
      else if (t >= s.t) {
        s.value = value;
        s.t = t;
      }
      return result;
    },
    read: (slot) => (slot === null ? null : (slot as LastSlot).value),
    encode: (slot) => (slot === null ? null : [(slot as LastSlot).value, (slot as LastSlot).t]),
    decode(wire) {
      if (wire === null) return null;
      if (!Array.isArray(wire) || wire.length !== 2) return undefined;
      const [value, t] = wire as unknown[];
      if ((typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') || typeof t !== 'number') return undefined;
      return { value, t };
    },
  };
}

function timeSinceOps(name: string): AggregateOps {
  return {
    name, readsBefore: true,
    create: () => null,
    apply: () => NOT_SATURATED,
    // maxTs is the key's greatest time before this event (read before apply): -Infinity for a key's first.
    read: (_slot, t, maxTs) => {
      if (maxTs === Number.NEGATIVE_INFINITY) return null;
      const s = (t - maxTs) / 1000;
      return s > 0 ? s : 0;
    },
    encode: () => null,
    decode: (wire) => (wire === null ? null : undefined),
  };
}
