/**
 * What the core makes of a `StateRead` (pipeline/state/types.ts), the state stage's answer for one record:
 * the values the event saw, held to the declared names, or the typed error its dead letter carries.
 */
import { InternalError, StateError, StateEventTimeError, StateKeyMissingError, type ErrorDetails } from '../../core/errors.js';
import type { StateRead, StateValue, StateValues } from '../state/types.js';

/**
 * Every declared aggregate's value, in declaration order (so a decision's `state` always lists the same
 * names in the same order). Throws InternalError when there are no values (the stage never read the record)
 * or one declared name is absent: both are bugs of the stage, not of the record.
 */
export function declaredValues(names: readonly string[], values: StateValues | undefined): StateValues {
  if (values === undefined) throw new InternalError('the pipeline keeps per-key state but the record reached the core without a state read');
  const held: Record<string, StateValue> = {};
  for (const name of names) {
    const v = values[name];
    if (v === undefined) throw new InternalError(`the state read has no value for the declared aggregate "${name}"`, { details: { aggregate: name } });
    held[name] = v;
  }
  return held;
}

/** The state errors by code: the dead letter's `verdict-error-code` is the class's, never a copied literal. */
const BY_CODE: ReadonlyMap<string, typeof StateError> = new Map([StateKeyMissingError, StateEventTimeError].map((c) => [c.code, c]));

/**
 * A StateRead's error as the typed error its record is dead-lettered with: STATE_KEY_MISSING,
 * STATE_EVENT_TIME_INVALID, or STATE_FAILED for a code this core does not know (the unknown code kept in
 * `details.stateCode`). Details are flattened to what a header holds (objects as JSON).
 */
export function stateErrorOf(error: Extract<StateRead, { error: unknown }>['error']): StateError {
  const Ctor = BY_CODE.get(error.code);
  const details: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(error.details ?? {})) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') details[k] = v;
    else if (v !== undefined) details[k] = typeof v === 'bigint' ? v.toString() : JSON.stringify(v) ?? typeof v;
  }
  if (Ctor === undefined) details['stateCode'] = error.code;
  return new (Ctor ?? StateError)(error.message, { details: details satisfies ErrorDetails });
}
