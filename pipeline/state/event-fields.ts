/**
 * Reading an event's fields by (dotted) path, and its event time, for per-key state.
 *
 * The event is read as given: the stage hands over the decoded, validated object. A path compiles once
 * into a getter, so a read per event walks no string.
 */
import { fieldGetter } from '../event-path.js';
import { StateEventTimeError } from '../../core/errors.js';
import type { CompiledState, StateRead } from './types.js';

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

/**
 * Compiles `state.maxAhead` into a check of an event against its record's timestamp (ms): a StateRead error
 * (STATE_EVENT_TIME_INVALID) for an event time further ahead than the bound, else null. A record without a
 * timestamp (≤ 0), or an event without a readable time (the state reports that itself), passes.
 */
export function aheadOfRecord(def: CompiledState): (event: Event, recordTimestamp: number) => StateRead | null {
  const time = eventTimeReader(def);
  return (event, recordTimestamp) => {
    if (!(recordTimestamp > 0)) return null;
    const t = time(event);
    if (!(t > recordTimestamp + def.maxAheadMs)) return null;
    return {
      error: {
        code: StateEventTimeError.code,
        message: `event time ${t} ms is more than state.maxAhead (${def.maxAheadMs} ms) ahead of its record's timestamp ${recordTimestamp}`,
        details: { field: def.eventTime.field, eventTime: t, recordTimestamp, maxAheadMs: def.maxAheadMs },
      },
    };
  };
}
