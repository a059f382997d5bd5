/**
 * Turning outcomes into output records. Decisions are JSON (readable by any consumer, kcat included) and
 * keyed like their input. Dead letters keep the original key, value and headers byte for byte and add
 * `verdict-*` headers that say what went wrong and where the record came from.
 */
import type { OptionalDecisionHeader } from '../config/pipeline-schema.js';
import type { VerdictError } from '../core/errors.js';
import { headerText } from './headers.js';
import type { Headers, InboundRecord, OutboundHeader, OutboundRecord } from './record.js';
import type { DeadLetterOutcome, DecisionOutcome, Outcome } from './outcome.js';

export const HEADER = {
  eventId: 'verdict-event-id',
  traceId: 'verdict-trace-id',
  pipeline: 'verdict-pipeline',
  models: 'verdict-models',
  errorCode: 'verdict-error-code',
  errorMessage: 'verdict-error-message',
  step: 'verdict-step',
  model: 'verdict-model',
  attempts: 'verdict-attempts',
  sourceTopic: 'verdict-source-topic',
  sourcePartition: 'verdict-source-partition',
  sourceOffset: 'verdict-source-offset',
  /**
   * On a dead letter: how many of its first headers are the input's own, so a replay restores exactly those
   * whatever their names (an input may carry `verdict-*` headers of its own, from an earlier replay).
   */
  originalHeaders: 'verdict-original-headers',
  /** On a dead letter written without the input's key, value and headers, because the broker refused it whole. */
  payloadDropped: 'verdict-payload-dropped',
  /** The Kafka error that refused a record (e.g. MESSAGE_TOO_LARGE), on the dead letter written instead. */
  kafkaError: 'verdict-kafka-error',
} as const;

// Trace context arrives in whichever header the producer used; W3C traceparent first.
const TRACE_HEADERS = ['traceparent', 'x-trace-id', 'trace-id'];

function traceId(headers: Headers): string | undefined {
  if (headers.length === 0) return undefined;
  for (const h of TRACE_HEADERS) {
    const v = headerText(headers, h);
    if (v !== undefined && v.length > 0) return v;
  }
  return undefined;
}

export interface DecisionOutput {
  readonly topic: string;
  /** Optional headers: `pipeline`, `models` (see the pipeline schema's `output.headers`). */
  readonly headers?: readonly OptionalDecisionHeader[];
}

/**
 * A decision keyed like its input, with the event id in a header (and the input's trace id, when it had
 * one), so consumers can correlate without parsing the value; other headers only when asked for.
 */
export function encodeDecision(outcome: DecisionOutcome, output: DecisionOutput): OutboundRecord {
  const { decision, record } = outcome;
  const headers: OutboundHeader[] = [{ key: HEADER.eventId, value: decision.eventId }];
  const trace = traceId(record.headers);
  if (trace !== undefined) headers.push({ key: HEADER.traceId, value: trace });
  for (const h of output.headers ?? []) {
    headers.push({ key: HEADER[h], value: h === 'pipeline' ? decision.pipeline : Object.entries(decision.models).map(([step, ref]) => `${step}=${ref}`).join(',') });
  }
  return { topic: output.topic, key: record.key, value: JSON.stringify(decision), headers };
}

/**
 * The input record byte for byte (key, value, every header in order, null-ness included), followed by the
 * `verdict-*` headers that say what went wrong and where the record came from.
 */
export function encodeDeadLetter(outcome: DeadLetterOutcome, topic: string, pipeline: string): OutboundRecord {
  const { record } = outcome;
  const headers: OutboundHeader[] = [
    ...record.headers,
    { key: HEADER.originalHeaders, value: String(record.headers.length) },
    ...provenance(record, reasonOf(outcome.error), pipeline),
  ];
  headers.push({ key: HEADER.attempts, value: String(outcome.attempts) });
  if (outcome.step !== undefined) headers.push({ key: HEADER.step, value: outcome.step });
  if (outcome.model !== undefined) headers.push({ key: HEADER.model, value: outcome.model });
  return { topic, key: record.key, value: record.value, headers };
}

/** Why a record is dead-lettered, as its headers say it. */
export interface DeadLetterReason {
  readonly code: string;
  readonly message: string;
  /** The Kafka error that refused the record's outcome, when that is the reason. */
  readonly kafkaError?: string;
}

/**
 * What is written when the broker refuses a dead letter itself (too large, invalid): no key, value or
 * input headers, only where the record is and why, so it can be read again from the input topic. Its key
 * is the record's position, never null, and its value empty, not null: a compacted topic keeps it.
 */
export function encodePayloadDropped(record: InboundRecord, reason: DeadLetterReason, topic: string, pipeline: string): OutboundRecord {
  const headers = provenance(record, reason, pipeline);
  headers.push({ key: HEADER.payloadDropped, value: 'key,value,headers' });
  return { topic, key: `${record.topic}/${record.partition}/${record.offset}`, value: '', headers };
}

function provenance(record: InboundRecord, reason: DeadLetterReason, pipeline: string): OutboundHeader[] {
  const headers: OutboundHeader[] = [
    { key: HEADER.pipeline, value: pipeline },
    { key: HEADER.errorCode, value: reason.code },
    // Header values must stay small: a message is for people, the code is for machines.
    { key: HEADER.errorMessage, value: reason.message.slice(0, 1000) },
    { key: HEADER.sourceTopic, value: record.topic },
    { key: HEADER.sourcePartition, value: String(record.partition) },
    { key: HEADER.sourceOffset, value: String(record.offset) },
  ];
  if (reason.kafkaError !== undefined) headers.push({ key: HEADER.kafkaError, value: reason.kafkaError });
  return headers;
}

/** A typed error as a dead letter's reason; a refusal by Kafka names Kafka's error. */
export function reasonOf(error: VerdictError): DeadLetterReason {
  const kafkaError = error.details['kafkaError'];
  return { code: error.code, message: error.message, ...(typeof kafkaError === 'string' ? { kafkaError } : {}) };
}

export function encodeOutcome(outcome: Outcome, output: DecisionOutput & { readonly deadLetter: string }, pipeline: string): OutboundRecord {
  return outcome.kind === 'decision' ? encodeDecision(outcome, output) : encodeDeadLetter(outcome, output.deadLetter, pipeline);
}
