/**
 * Ingestion: record bytes → decoded event → validated event → feature vectors. Anything wrong throws a
 * typed error, which the pipeline turns into a dead letter carrying the original bytes.
 */
import type { CompiledPipeline } from '../../config/compiled.js';
import type { InboundRecord } from '../types.js';
import { identify, resolveIdentity } from './contract.js';
import { decodeValue } from './decode.js';
import { compileFeatures } from './features.js';
import { compileValidator } from './validate.js';

export interface IngestedEvent {
  readonly record: InboundRecord;
  readonly id: string;
  readonly key: string;
  readonly event: Readonly<Record<string, unknown>>;
  readonly features: Readonly<Record<string, Float32Array>>;
  /** Scheduler time when ingestion began: the start of the event's latency breakdown. */
  readonly receivedAt: number;
  readonly ingestMs: number;
}

export interface Ingestor {
  /** Decodes and validates a record. */
  fromRecord(record: InboundRecord, now: number): IngestedEvent;
  /** The programmatic path: an already-decoded event object. */
  fromEvent(event: Record<string, unknown>, record: InboundRecord, now: number): IngestedEvent;
}

export function createIngestor(pipeline: CompiledPipeline, clock: { now(): number }): Ingestor {
  const validate = compileValidator(pipeline.input.schema, pipeline.input.schemaName);
  const mappers = Object.entries(pipeline.input.features).map(([name, specs]) => [name, compileFeatures(specs)] as const);
  // The same contract the compiler checked (contract.ts): string or integer ids and keys.
  const identity = resolveIdentity(pipeline.input.schema, pipeline.input.schemaName);
  const format = pipeline.input.format;

  const fromEvent = (raw: Record<string, unknown>, record: InboundRecord, now: number): IngestedEvent => {
    const event = validate(raw);
    const { id, key } = identify(event, identity, record);
    const features: Record<string, Float32Array> = {};
    for (const [name, mapper] of mappers) features[name] = mapper.map(event);
    return { record, id, key, event, features, receivedAt: now, ingestMs: clock.now() - now };
  };
  return {
    fromEvent,
    fromRecord: (record, now) => fromEvent(decodeValue(record.value, format), record, now),
  };
}
