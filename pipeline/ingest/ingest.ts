/**
 * Ingestion: record bytes → decoded event → validated event → feature vectors. Anything wrong throws a
 * typed error, which the pipeline turns into a dead letter carrying the original bytes. Every way an event
 * comes in passes `input.limits` first (README "Limits"): a record's bytes through `decodeRecord` (size,
 * then depth, fields and string length on the bytes), an API event object through `checkEventLimits`.
 */
import type { CompiledPipeline } from '../../config/compiled.js';
import type { Clock } from '../../core/clock.js';
import type { InboundRecord } from '../record.js';
import { identify, resolveIdentity } from '../../config/input-contract.js';
import { decodeRecord } from './decode.js';
import { checkEventLimits } from './limits.js';
import { compileFeatures, type FeatureRow } from './features.js';
import { compileValidator } from './validate.js';
import { declaredValues } from './state-read.js';
import type { StateValues } from '../state/types.js';

export interface IngestedEvent {
  readonly record: InboundRecord;
  readonly id: string;
  readonly key: string;
  readonly event: Readonly<Record<string, unknown>>;
  /**
   * The per-key state values the event saw (pipeline/state/), every declared aggregate by name in
   * declaration order; an empty object when the pipeline declares no state. What features `{ state }`,
   * CEL's `state` and the decision's `state` read.
   */
  readonly state: StateValues;
  /** Float32Array, or Float64Array for a set that feeds a float64 model input (see `float64FeatureSets`). */
  readonly features: Readonly<Record<string, FeatureRow>>;
  /** Scheduler time when ingestion began: the start of the event's latency breakdown. */
  readonly receivedAt: number;
  readonly ingestMs: number;
}

export interface Ingestor {
  /**
   * A record's event as the core will see it: decoded, validated, identified (its id and key readable) and
   * its event-field feature columns buildable. What the state stage (runtime/keyed-state.ts) applies to the
   * state before the core runs; a record it refuses the core refuses the same way, so no event the core
   * dead-letters for its own content is counted in the state. Throws the typed error (DecodeError and its
   * subclasses, SchemaError, FeatureError).
   */
  readEvent(record: InboundRecord): Readonly<Record<string, unknown>>;
  /**
   * An event object (the programmatic path) checked against `input.limits` (depth, fields, string length),
   * validated and identified: with its decision key, which keys its state there. Throws as `readEvent`.
   */
  identifyEvent(raw: Record<string, unknown>, recordKey: Buffer | null): { readonly event: Readonly<Record<string, unknown>>; readonly key: string };
  /**
   * Decodes and validates a record. `state`: the values the event saw, required when the pipeline declares
   * state (without them an event that ingests fine throws InternalError: a record the stage never read).
   */
  fromRecord(record: InboundRecord, now: number, state?: StateValues): IngestedEvent;
  /**
   * The programmatic path: an event object, checked against `input.limits` (depth, fields, string length:
   * it has no bytes to size) before anything else. `state` as for `fromRecord`.
   */
  fromEvent(event: Record<string, unknown>, record: InboundRecord, now: number, state?: StateValues): IngestedEvent;
}

const NO_STATE: StateValues = Object.freeze({});

export function createIngestor(pipeline: CompiledPipeline, clock: Pick<Clock, 'now'>): Ingestor {
  const validate = compileValidator(pipeline.input.schema, pipeline.input.schemaName);
  const wide = float64FeatureSets(pipeline);
  // Only the sets some step reads: a set nothing uses must not refuse events (nor cost a row per event).
  const used = usedFeatureSets(pipeline);
  const mappers = Object.entries(pipeline.input.features)
    .filter(([name]) => used.has(name))
    .map(([name, specs]) => [name, compileFeatures(specs), wide.has(name)] as const);
  // The same contract the compiler checked (contract.ts): string or integer ids and keys.
  const identity = resolveIdentity(pipeline.input.schema, pipeline.input.schemaName);
  const { format, limits } = pipeline.input;
  const names = pipeline.state?.aggregates.map((a) => a.name) ?? null;
  const nullState: StateValues = Object.freeze(Object.fromEntries((names ?? []).map((n) => [n, null])));
  // Scratch rows for that check, float32 or float64 as the core builds each set (range checks differ).
  let narrow = new Float32Array(64);
  let wideRow = new Float64Array(64);

  /**
   * Every column once into a scratch row, state columns reading null (their `missing`): a column of an event
   * field that cannot be built throws here as it would in the core, before the event reaches the state.
   */
  const checkColumns = (event: Readonly<Record<string, unknown>>): void => {
    for (const [, mapper, float64] of mappers) {
      if (float64) mapper.map(event, wideRow.length >= mapper.width ? wideRow : (wideRow = new Float64Array(mapper.width)), 0, nullState);
      else mapper.map(event, narrow.length >= mapper.width ? narrow : (narrow = new Float32Array(mapper.width)), 0, nullState);
    }
  };
  /** A decoded event within the limits, through validation, identity and features. */
  const ingest = (raw: Record<string, unknown>, record: InboundRecord, now: number, read?: StateValues): IngestedEvent => {
    const event = validate(raw);
    const { id, key } = identify(event, identity, record.key);
    // No state read for an event that ingests: the stage refused its columns (that error first), or a bug.
    if (names !== null && read === undefined) checkColumns(event);
    const state = names === null ? NO_STATE : declaredValues(names, read);
    const features: Record<string, FeatureRow> = {};
    for (const [name, mapper, float64] of mappers) features[name] = mapper.map(event, float64 ? new Float64Array(mapper.width) : new Float32Array(mapper.width), 0, state);
    return { record, id, key, event, state, features, receivedAt: now, ingestMs: clock.now() - now };
  };
  return {
    readEvent: (record) => {
      const event = validate(decodeRecord(record, format, limits));
      identify(event, identity, record.key);
      checkColumns(event);
      return event;
    },
    identifyEvent: (raw, recordKey) => {
      checkEventLimits(raw, limits);
      const event = validate(raw);
      const { key } = identify(event, identity, recordKey);
      checkColumns(event);
      return { event, key };
    },
    fromEvent: (raw, record, now, state) => {
      checkEventLimits(raw, limits);
      return ingest(raw, record, now, state);
    },
    fromRecord: (record, now, state) => ingest(decodeRecord(record, format, limits), record, now, state),
  };
}

/**
 * Feature sets some step feeds into a float64 input: computed in float64 so that input gets full precision
 * (float32 inputs fed from them narrow when packed). Every other set stays float32, so the usual case, one
 * set feeding one float32 input, is packed with a memcpy.
 */
export function float64FeatureSets(pipeline: Pick<CompiledPipeline, 'steps'>): ReadonlySet<string> {
  const sets = new Set<string>();
  for (const step of pipeline.steps) {
    for (const input of step.inputs) {
      if (input.spec.type !== 'float64') continue;
      for (const src of input.sources) if (src.kind === 'feature') sets.add(src.set);
    }
  }
  return sets;
}

/** Feature sets some step input reads. */
export function usedFeatureSets(pipeline: Pick<CompiledPipeline, 'steps'>): ReadonlySet<string> {
  const sets = new Set<string>();
  for (const step of pipeline.steps) {
    for (const input of step.inputs) for (const src of input.sources) if (src.kind === 'feature') sets.add(src.set);
  }
  return sets;
}
