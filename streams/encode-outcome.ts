/**
 * Turning outcomes into output records. Decisions are JSON (readable by any consumer, kcat included) and
 * keyed like their input. Dead letters keep the original key, value and headers byte for byte and add
 * `verdict-*` headers that say what went wrong and where the record came from.
 */
import type { OptionalDecisionHeader } from '../config/pipeline-schema.js';
import type { Headers, OutboundRecord } from './types.js';
import type { DeadLetter, Decided, Outcome } from './outcome.js';

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
} as const;

// Trace context arrives in whichever header the producer used; W3C traceparent first.
const TRACE_HEADERS = ['traceparent', 'x-trace-id', 'trace-id'];

function traceId(headers: Headers): string | undefined {
  for (const h of TRACE_HEADERS) {
    const v = headers[h];
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
export function encodeDecision(outcome: Decided, output: DecisionOutput): OutboundRecord {
  const { decision, record } = outcome;
  const headers: Record<string, string> = { [HEADER.eventId]: decision.eventId };
  const trace = traceId(record.headers);
  if (trace !== undefined) headers[HEADER.traceId] = trace;
  for (const h of output.headers ?? []) {
    headers[HEADER[h]] = h === 'pipeline' ? decision.pipeline : Object.entries(decision.models).map(([step, ref]) => `${step}=${ref}`).join(',');
  }
  return { topic: output.topic, key: record.key, value: JSON.stringify(decision), headers };
}

export function encodeDeadLetter(outcome: DeadLetter, topic: string, pipeline: string): OutboundRecord {
  const { record, error } = outcome;
  const headers: Record<string, string> = {
    ...record.headers,
    [HEADER.pipeline]: pipeline,
    [HEADER.errorCode]: error.code,
    // Header values must stay small: a message is for people, the code is for machines.
    [HEADER.errorMessage]: error.message.slice(0, 1000),
    [HEADER.attempts]: String(outcome.attempts),
    [HEADER.sourceTopic]: record.topic,
    [HEADER.sourcePartition]: String(record.partition),
    [HEADER.sourceOffset]: String(record.offset),
  };
  if (outcome.step !== undefined) headers[HEADER.step] = outcome.step;
  if (outcome.model !== undefined) headers[HEADER.model] = outcome.model;
  return { topic, key: record.key, value: record.value ?? Buffer.alloc(0), headers };
}

export function encodeOutcome(outcome: Outcome, output: DecisionOutput & { readonly deadLetter: string }, pipeline: string): OutboundRecord {
  return outcome.kind === 'decision' ? encodeDecision(outcome, output) : encodeDeadLetter(outcome, output.deadLetter, pipeline);
}
