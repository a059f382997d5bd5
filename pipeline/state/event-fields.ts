/**
 * Reading an event's fields by (dotted) path, and its event time, for per-key state.
 *
 * The event is read as given: the stage hands over the decoded, validated object. A path compiles once
 * into a getter, so a read per event walks no string.
 */
import type { CompiledState } from './types.js';

type Event = Readonly<Record<string, unknown>>;

/** Reads one field of an event; undefined when any step of the path is missing or not an object. */
export type FieldGetter = (event: Event) => unknown;

/** Compiles a dotted path (`device.id`) into a getter. The compiler has checked the path's shape. */
export function fieldGetter(path: string): FieldGetter {
  const parts = path.split('.');
  const [a, b] = parts;
  // The common one- and two-segment paths avoid a loop per read.
  if (parts.length === 1 && a !== undefined) return (e) => e[a];
  if (parts.length === 2 && a !== undefined && b !== undefined) {
    return (e) => {
      const o = e[a];
      return typeof o === 'object' && o !== null ? (o as Event)[b] : undefined;
    };
  }
  return (e) => {
    let cur: unknown = e;
    for (const p of parts) {
      if (typeof cur !== 'object' || cur === null) return undefined;
      cur = (cur as Event)[p];
    }
    return cur;
  };
}

/**
 * Compiles `state.eventTime` into a reader of an event's time in ms: the field's value (times 1000 for
 * unit `s`), or NaN when it is missing, not a number, not finite, or negative. A -0 is read as 0 (the
 * changelog's MessagePack cannot keep a zero's sign, and restored state must read the same).
 */
export function eventTimeReader(def: CompiledState): (event: Event) => number {
  const get = fieldGetter(def.eventTime.field);
  const scale = def.eventTime.unit === 's' ? 1000 : 1;
  return (event) => {
    const v = get(event);
    if (typeof v !== 'number') return Number.NaN;
    const t = v * scale + 0;
    return Number.isFinite(t) && t >= 0 ? t : Number.NaN;
  };
}
