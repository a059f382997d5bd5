/**
 * Compiling a pipeline's feature spec into a mapper from an event (and the per-key state values it saw, for
 * `{ state: <name> }` columns) to a Float32Array row (or a Float64Array one, for a feature set that feeds a
 * float64 model input and so must not be rounded to float32). This runs once per
 * event per feature set on the hot path, so everything that depends only on the spec (path splitting,
 * one-hot lookup tables, column offsets) is done once here, and `map` is a loop over small closures.
 */
import { ConfigError, FeatureError } from '../../core/errors.js';
import { fieldGetter } from '../event-path.js';
import { featureColumns } from '../../config/feature-columns.js';
import type { FeatureSpec } from '../../config/pipeline-schema.js';
import type { StateValues } from '../state/types.js';

type Event = Readonly<Record<string, unknown>>;

export interface FeatureMapper {
  /** Number of columns the mapper writes. */
  readonly width: number;
  /** One name per column, in order: `amount`, `log1p(amount)`, `merchant_category=crypto`, `country==card_country`. */
  readonly columns: readonly string[];
  /**
   * Writes one row. With `out`, writes `width` values from `offset` (so a batch can be filled in place) and
   * returns `out`; without, returns a fresh array. `state`: the per-key state values the event saw, for
   * `{ state: <name> }` columns (default none). Throws FeatureError for a missing or ill-typed field or
   * state value.
   */
  map(event: Event, out?: undefined, offset?: number, state?: StateValues): Float32Array;
  map<T extends FeatureRow>(event: Event, out: T, offset?: number, state?: StateValues): T;
}

/** Where a mapper writes: float32 for the usual model input, float64 for sets feeding a float64 input. */
export type FeatureRow = Float32Array | Float64Array;

/** Reads a (possibly dotted) path from an event; undefined when any step is missing or not an object. */
type Getter = (event: Event) => unknown;
/** Writes one spec's columns starting at `at`. */
type Writer = (event: Event, state: StateValues, out: FeatureRow, at: number) => void;

const NO_STATE: StateValues = Object.freeze({});

function compilePath(path: string): Getter {
  const parts = path.split('.');
  if (parts.some((p) => p.length === 0)) throw new ConfigError(`feature field "${path}" is not a valid path`, { details: { field: path } });
  return fieldGetter(path);
}

function missing(field: string): FeatureError {
  return new FeatureError(`feature field "${field}" is missing`, { details: { field } });
}

function illTyped(field: string, expected: string, value: unknown): FeatureError {
  const got = value === null ? 'null' : typeof value === 'number' ? String(value) : typeof value;
  return new FeatureError(`feature field "${field}" must be ${expected}, got ${got}`, { details: { field, expected, got } });
}

function numberOf(field: string, value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  throw value === undefined ? missing(field) : illTyped(field, 'a finite number', value);
}

function numericWriter(field: string, get: Getter, transform: 'identity' | 'log1p' | 'bool'): Writer {
  switch (transform) {
    case 'identity':
      return (e, _state, out, at) => {
        const x = numberOf(field, get(e));
        out[at] = x;
        // Read back: a finite number beyond float32's range is stored as ±Infinity in a float32 row.
        if (!Number.isFinite(out[at])) throw illTyped(field, 'a number within float32 range', x);
      };
    case 'log1p':
      return (e, _state, out, at) => {
        const x = numberOf(field, get(e));
        // log1p is undefined at or below -1; a silent NaN or -Infinity would poison every model downstream.
        if (x <= -1) throw illTyped(field, 'a number above -1 for log1p', x);
        out[at] = Math.log1p(x);
      };
    case 'bool':
      return (e, _state, out, at) => {
        const v = get(e);
        if (typeof v === 'boolean') out[at] = v ? 1 : 0;
        else if (typeof v === 'number' && Number.isFinite(v)) out[at] = v !== 0 ? 1 : 0;
        else throw v === undefined ? missing(field) : illTyped(field, 'a boolean', v);
      };
  }
}

function oneHotWriter(field: string, get: Getter, values: readonly string[]): Writer {
  const index = new Map<string, number>();
  values.forEach((v, i) => {
    if (index.has(v)) throw new ConfigError(`feature "${field}" lists one-hot value "${v}" twice`, { details: { field } });
    index.set(v, i);
  });
  const width = values.length;
  return (e, _state, out, at) => {
    const v = get(e);
    // Categorical codes are often numbers (merchant category codes), so numbers match their decimal string.
    let key: string;
    if (typeof v === 'string') key = v;
    else if (typeof v === 'number' || typeof v === 'boolean') key = String(v);
    else throw v === undefined || v === null ? missing(field) : illTyped(field, 'a string', v);
    out.fill(0, at, at + width);
    const hit = index.get(key);
    // An unseen category is all zeros rather than an error: new merchants appear before models are retrained.
    if (hit !== undefined) out[at + hit] = 1;
  };
}

function equalsWriter(field: string, get: Getter, other: string, getOther: Getter): Writer {
  return (e, _state, out, at) => {
    const a = get(e);
    if (a === undefined) throw missing(field);
    const b = getOther(e);
    if (b === undefined) throw missing(other);
    out[at] = a === b ? 1 : 0;
  };
}

/** A state value: undefined when the event saw no state of that name (the caller gave none). */
function stateValue(name: string, state: StateValues): StateValues[string] {
  const v = state[name];
  if (v === undefined) throw new FeatureError(`feature state.${name} is missing: the event saw no state value "${name}"`, { details: { field: `state.${name}` } });
  return v;
}

/**
 * A state value as one column: null (nothing to report: an empty window's mean, a key's first timeSince)
 * is `missing`, written as is; a number is transformed as an event field is; a boolean only feeds `bool`.
 */
function stateWriter(name: string, transform: 'identity' | 'log1p' | 'bool', missingValue: number): Writer {
  const field = `state.${name}`;
  const numeric = numericWriter(field, (s) => s[name], transform);
  return (_e, state, out, at) => {
    const v = stateValue(name, state);
    if (v === null) {
      out[at] = missingValue;
      return;
    }
    if (typeof v !== 'number' && !(transform === 'bool' && typeof v === 'boolean')) throw illTyped(field, transform === 'bool' ? 'a boolean or a number' : 'a number', v);
    // The numeric writer reads its value through a getter: here the state values stand for the event.
    numeric(state, state, out, at);
  };
}

/** 1 when the state value equals the event field's value (===), else 0; a null state value is 0. */
function stateEqualsWriter(name: string, other: string, getOther: Getter): Writer {
  return (e, state, out, at) => {
    const b = getOther(e);
    if (b === undefined) throw missing(other);
    const v = stateValue(name, state);
    out[at] = v !== null && v === b ? 1 : 0;
  };
}

export function compileFeatures(specs: readonly FeatureSpec[]): FeatureMapper {
  const writers: Writer[] = [];
  const offsets: number[] = [];
  let at = 0;
  for (const spec of specs) {
    offsets.push(at);
    if ('state' in spec) {
      writers.push('equalsField' in spec
        ? stateEqualsWriter(spec.state, spec.equalsField, compilePath(spec.equalsField))
        : stateWriter(spec.state, spec.transform, spec.missing));
      at += 1;
      continue;
    }
    const get = compilePath(spec.field);
    if ('oneHot' in spec) {
      writers.push(oneHotWriter(spec.field, get, spec.oneHot));
      at += spec.oneHot.length;
    } else if ('equalsField' in spec) {
      writers.push(equalsWriter(spec.field, get, spec.equalsField, compilePath(spec.equalsField)));
      at += 1;
    } else {
      writers.push(numericWriter(spec.field, get, spec.transform));
      at += 1;
    }
  }
  const columns = featureColumns(specs);
  const width = columns.length;
  const count = writers.length;

  const map = (event: Event, out?: FeatureRow, offset = 0, state: StateValues = NO_STATE): FeatureRow => {
    const row = out ?? new Float32Array(width);
    // A short buffer is a caller bug, not bad input, so it is a RangeError rather than a FeatureError.
    if (offset < 0 || offset + width > row.length) {
      throw new RangeError(`feature row needs ${width} values at offset ${offset}, buffer holds ${row.length}`);
    }
    for (let i = 0; i < count; i++) (writers[i] as Writer)(event, state, row, offset + (offsets[i] as number));
    return row;
  };
  // The overloads only narrow the return type to the buffer passed in, which is what `map` returns.
  return { width, columns, map: map as FeatureMapper['map'] };
}
