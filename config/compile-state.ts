/**
 * Compiles the pipeline file's `state` section into the `CompiledState` the state (pipeline/state/) and the
 * core run: durations read, every default applied, everything that would fail for every event (or hold
 * unbounded memory) refused with its config path (`state.aggregates.txn_count_1h.bucket: …`).
 *
 * Defaults: `allowedLateness` 1m, `idleAfter` the longest window, `maxKeysPerPartition` 100,000, `sees`
 * before (per aggregate unless it says), `bucket` the window / 60 when that is a whole number of seconds
 * (1h → 1m, 24h → 24m, 7d → 168m), else 1s; `maxDistinct` 1,000 (in the schema).
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '../core/errors.js';
import type { CompiledAggregate, CompiledState, StateSees } from './compiled-state.js';
import { declaredField } from './input-contract.js';
import { formatDuration, parseDuration } from './duration.js';
import type { AggregateSpec, FieldSpec, InputSchemaSpec, StateSpec } from './pipeline-schema.js';

/** The shortest bucket: finer buckets cost memory and time per event for no use at event-time resolution. */
export const MIN_BUCKET_MS = 1_000;
/** The most buckets one window keeps, per key: what bounds a key's memory. */
export const MAX_BUCKETS = 10_000;
/** A default bucket is this fraction of its window. */
const DEFAULT_BUCKETS = 60;

function fail(path: string, message: string): never {
  throw new ConfigError(`${path}: ${message}`, { details: { path } });
}

function durationAt(text: string, path: string): number {
  const read = parseDuration(text);
  if ('problem' in read) fail(path, read.problem);
  return read.ms;
}

/** The type the schema gives `field`, 'unknown' for a path inside a declared object; refuses an undeclared field. */
function fieldType(schema: InputSchemaSpec, schemaName: string, field: string, path: string): FieldSpec['type'] | 'unknown' {
  const found = declaredField(schema, field);
  if (found === undefined) fail(path, `"${field}" is not a field of schema "${schemaName}"`);
  return found.field === field ? found.spec.type : 'unknown';
}

const NUMERIC = new Set<string>(['number', 'integer', 'unknown']);
const SCALAR = new Set<string>(['string', 'number', 'integer', 'boolean', 'unknown']);

/**
 * `state` compiled against the input schema, or null when the file has none. Throws ConfigError naming the
 * path: an undeclared or ill-typed field (event time and sums need numbers; distinct and last a scalar), a
 * duration that does not parse, a window that is not a whole number of buckets, a bucket under 1s, more
 * than 10,000 buckets, `idleAfter` shorter than the longest window (or absent with no window to default
 * from), a reserved name.
 */
export function compileState(spec: StateSpec | undefined, schema: InputSchemaSpec, schemaName: string): CompiledState | null {
  if (spec === undefined) return null;
  const timeType = fieldType(schema, schemaName, spec.eventTime.field, 'state.eventTime.field');
  if (!NUMERIC.has(timeType)) fail('state.eventTime.field', `"${spec.eventTime.field}" is a ${timeType}; event time must be a number (epoch ${spec.eventTime.unit === 's' ? 'seconds' : 'milliseconds'})`);
  const allowedLatenessMs = durationAt(spec.allowedLateness, 'state.allowedLateness');

  let longest: { ms: number; path: string } | null = null;
  const aggregates: CompiledAggregate[] = [];
  for (const [name, agg] of Object.entries(spec.aggregates)) {
    const path = `state.aggregates.${name}`;
    // `__proto__` is an identifier, but as a key of the values object it would set its prototype instead.
    if (name === '__proto__') fail(path, 'the name __proto__ is reserved');
    const compiled = compileAggregate(name, agg, path, spec.sees, schema, schemaName);
    if ('windowMs' in compiled && (longest === null || compiled.windowMs > longest.ms)) longest = { ms: compiled.windowMs, path: `${path}.window` };
    aggregates.push(compiled);
  }

  const idleAfterMs = idleBound(spec.idleAfter, longest);
  const meaning = { eventTime: spec.eventTime, allowedLatenessMs, idleAfterMs, aggregates };
  return {
    eventTime: { field: spec.eventTime.field, unit: spec.eventTime.unit },
    allowedLatenessMs,
    idleAfterMs,
    maxKeysPerPartition: spec.maxKeysPerPartition,
    maxAheadMs: durationAt(spec.maxAhead, 'state.maxAhead'),
    changelogTopic: spec.changelogTopic ?? null,
    aggregates,
    fingerprint: stateFingerprint(meaning),
  };
}

function idleBound(text: string | undefined, longest: { ms: number; path: string } | null): number {
  if (text === undefined) {
    if (longest === null) fail('state.idleAfter', 'required when no aggregate has a window (it bounds how long an idle key is kept)');
    return longest.ms;
  }
  const ms = durationAt(text, 'state.idleAfter');
  if (longest !== null && ms < longest.ms) {
    fail('state.idleAfter', `${text} is shorter than the longest window, ${formatDuration(longest.ms)} (${longest.path}); a key would be evicted while its window still counts`);
  }
  if (ms <= 0) fail('state.idleAfter', 'must be longer than 0');
  return ms;
}

function compileAggregate(name: string, agg: AggregateSpec, path: string, sees: StateSees, schema: InputSchemaSpec, schemaName: string): CompiledAggregate {
  const typeOf = (field: string): string => fieldType(schema, schemaName, field, `${path}.field`);
  switch (agg.op) {
    case 'timeSince':
      return { name, op: 'timeSince' };
    case 'last': {
      const t = typeOf(agg.field);
      if (!SCALAR.has(t)) fail(`${path}.field`, `"${agg.field}" is an ${t}; last keeps a string, number or boolean`);
      return { name, op: 'last', field: agg.field, sees: agg.sees ?? sees };
    }
    case 'count':
      if (agg.field !== undefined) typeOf(agg.field);
      return { name, op: 'count', field: agg.field ?? null, ...windowOf(agg, path, sees) };
    case 'distinct': {
      const t = typeOf(agg.field);
      if (!SCALAR.has(t)) fail(`${path}.field`, `"${agg.field}" is an ${t}; distinct counts strings, numbers or booleans`);
      return { name, op: 'distinct', field: agg.field, maxDistinct: agg.maxDistinct, ...windowOf(agg, path, sees) };
    }
    default: {
      const t = typeOf(agg.field);
      if (!NUMERIC.has(t)) fail(`${path}.field`, `"${agg.field}" is a ${t}; ${agg.op} needs a number or an integer`);
      return { name, op: agg.op, field: agg.field, ...windowOf(agg, path, sees) };
    }
  }
}

/** A windowed aggregate's window and bucket (ms), checked, and its `sees`. */
function windowOf(agg: { window: string; bucket?: string | undefined; sees?: StateSees | undefined }, path: string, sees: StateSees): { windowMs: number; bucketMs: number; sees: StateSees } {
  const windowMs = durationAt(agg.window, `${path}.window`);
  if (windowMs < MIN_BUCKET_MS) fail(`${path}.window`, `${agg.window} is shorter than the least bucket, 1s`);
  const explicit = agg.bucket !== undefined;
  const bucketMs = explicit ? durationAt(agg.bucket!, `${path}.bucket`) : defaultBucketMs(windowMs);
  const bucketPath = explicit ? `${path}.bucket` : `${path}.window`;
  const bucketText = `${formatDuration(bucketMs)}${explicit ? '' : ' (the default bucket; set bucket)'}`;
  if (bucketMs < MIN_BUCKET_MS) fail(bucketPath, `${agg.bucket ?? ''} is below the least bucket, 1s`);
  if (windowMs % bucketMs !== 0) fail(bucketPath, `the window ${agg.window} is not a whole number of buckets of ${bucketText}`);
  const buckets = windowMs / bucketMs;
  if (buckets > MAX_BUCKETS) fail(bucketPath, `the window ${agg.window} in buckets of ${bucketText} is ${buckets} buckets; at most ${MAX_BUCKETS} are kept per key (use a longer bucket)`);
  return { windowMs, bucketMs, sees: agg.sees ?? sees };
}

/** window / 60 when that is a whole number of seconds (1h → 1m), else 1s (90s → 1s, 90 buckets). */
export function defaultBucketMs(windowMs: number): number {
  const bucket = windowMs / DEFAULT_BUCKETS;
  return Number.isInteger(bucket / MIN_BUCKET_MS) ? bucket : MIN_BUCKET_MS;
}

/**
 * sha256 (hex) of a canonical JSON (keys sorted at every level) of what gives stored state its meaning:
 * the event time, the lateness and idle bounds, and each aggregate in declaration order without `sees`
 * (which only says when an event reads it, not what is stored). The key bound and the changelog topic are
 * left out: changing them must not discard state.
 */
function stateFingerprint(meaning: {
  eventTime: { field: string; unit: string }; allowedLatenessMs: number; idleAfterMs: number; aggregates: readonly CompiledAggregate[];
}): string {
  const aggregates = meaning.aggregates.map((a) => Object.fromEntries(Object.entries(a).filter(([k]) => k !== 'sees')));
  return createHash('sha256').update(canonicalJson({ ...meaning, aggregates })).digest('hex');
}

/** JSON with object keys sorted, so equal values give equal text whatever their keys' insertion order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}
