/**
 * One key's state: its greatest applied event time (`maxTs`), the offset of its last applied record
 * (`lastOffset`), and one slot per declared aggregate (aggregates.ts). Applying an event reads the
 * aggregates that see the state before it, applies it, then reads those that see it after.
 *
 * Pure data plus functions over it: no clock, no I/O. Reads write into a caller's array (reused per
 * event), so a read allocates nothing; only `toValues` builds the object an event carries.
 */
import type { AggregateOps, Slot } from './aggregates.js';
import type { StateValue, StateValues } from './types.js';

type Event = Readonly<Record<string, unknown>>;

export class KeyState {
  /** Greatest applied event time, ms; -Infinity before the first applied event. */
  maxTs = Number.NEGATIVE_INFINITY;
  /** Offset of the last applied record; -1 before the first. */
  lastOffset = -1;
  /** One per aggregate, in declaration order. */
  readonly slots: Slot[];

  constructor(slots: Slot[]) {
    this.slots = slots;
  }

  /** A key with no applied event: reads as empty (count 0, sum 0, mean/min/max/last/timeSince null, distinct 0). */
  static empty(ops: readonly AggregateOps[]): KeyState {
    return new KeyState(ops.map((o) => o.create()));
  }
}

/**
 * Applies the record at `offset` (event time t) to `ks`, writing each aggregate's value as the event sees
 * it into `out` (declaration order). Returns how many distinct values the bound kept out (0 usually).
 */
export function applyEvent(ops: readonly AggregateOps[], ks: KeyState, offset: number, t: number, event: Event, out: StateValue[]): number {
  const before = ks.maxTs;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as AggregateOps;
    if (op.readsBefore) out[i] = op.read(ks.slots[i] as Slot, t, before);
  }
  const maxTs = t > before ? t : before;
  ks.maxTs = maxTs;
  ks.lastOffset = offset;
  let saturated = 0;
  for (let i = 0; i < ops.length; i++) {
    const r = (ops[i] as AggregateOps).apply(ks.slots[i] as Slot, t, event, maxTs);
    ks.slots[i] = r.slot;
    if (r.saturated) saturated++;
  }
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as AggregateOps;
    if (!op.readsBefore) out[i] = op.read(ks.slots[i] as Slot, t, maxTs);
  }
  return saturated;
}

/** Reads every aggregate at t from `ks` as it stands (a late or replayed record, a snapshot), into `out`. */
export function readAt(ops: readonly AggregateOps[], ks: KeyState, t: number, out: StateValue[]): void {
  for (let i = 0; i < ops.length; i++) out[i] = (ops[i] as AggregateOps).read(ks.slots[i] as Slot, t, ks.maxTs);
}

/** The values object an event carries: every aggregate by name, in declaration order. */
export function toValues(ops: readonly AggregateOps[], out: readonly StateValue[]): StateValues {
  const values: Record<string, StateValue> = {};
  for (let i = 0; i < ops.length; i++) {
    const name = (ops[i] as AggregateOps).name;
    // `__proto__` is a valid identifier: assigned, it would set the prototype instead of a field.
    if (name === '__proto__') Object.defineProperty(values, name, { value: out[i] ?? null, enumerable: true, writable: true, configurable: true });
    else values[name] = out[i] ?? null;
  }
  return values;
}
