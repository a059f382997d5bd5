/**
 * Reading an event's fields by (dotted) path, and its event time, for per-key state.
 *
 * The event is read as given: the stage hands over the decoded, validated object. A path compiles once
 * into a getter, so a read per event walks no string.
 */
import { fieldGetter } from '../event-path.js';
import type { CompiledState } from './types.js';

export { fieldGetter, type FieldGetter } from '../event-path.js';

type Event = Readonly<Record<string, unknown>>;


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
