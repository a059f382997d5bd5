/**
 * A block of records' way through the core: ingest each → route the block through the model steps → join
 * → decide each. The block (a chunk admitted by the stream, or a single record from the API) is the unit
 * of routing and joining, so orchestration costs a few promises per block, not per event. Never rejects:
 * every failure becomes a dead letter with its typed error, so no record is silently dropped.
 */
import type { SchedulerLike } from 'rxjs';
import { toMicros } from '../core/clock.js';
import type { Decision, DecisionInput } from '../actors/decision-actor.js';
import { asVerdictError, FeatureError, InternalError, type VerdictError } from '../core/errors.js';
import type { Metrics } from '../core/metrics.js';
import type { IngestedEvent, Ingestor } from './ingest/ingest.js';
import type { JoinResult } from './join/types.js';
import type { Outcome } from './outcome.js';
import type { EventRouter } from './route/event-router.js';
import type { InboundRecord } from './record.js';

export interface Decider {
  decide(input: DecisionInput): Decision;
}

export interface BlockProcessorDeps {
  readonly pipeline: string;
  readonly ingestor: Ingestor;
  readonly router: EventRouter;
  readonly decider: Decider;
  readonly scheduler: SchedulerLike;
  readonly metrics?: Metrics;
}

/** Records in, one outcome per record out, in the same order; `events` replaces decoding (the API path). */
export type BlockProcessor = (records: readonly InboundRecord[], events?: readonly Record<string, unknown>[]) => Promise<Outcome[]>;

/**
 * A join with no model output and a non-retryable step error cannot be decided: the record itself is at
 * fault (bad input for a model). Timeouts and other transient failures go to the incomplete-join policy.
 */
function undecidable(join: JoinResult): { step: string; model: string | undefined; error: VerdictError } | null {
  // Any ok output makes the event decidable; a for-in finds one without allocating a key array per event.
  for (const _ in join.outputs) return null;
  for (const [step, serialized] of Object.entries(join.errors)) {
    const error = asVerdictError(serialized);
    if (!error.retryable) return { step, model: join.models[step], error };
  }
  return null;
}

export function createBlockProcessor(deps: BlockProcessorDeps): BlockProcessor {
  const { ingestor, router, decider, scheduler, metrics } = deps;
  // Label children resolved once: a labelled call hashes its label set on every call.
  const eventsIn = metrics?.eventsIn.labels({ pipeline: deps.pipeline });
  const stage = (name: string) => metrics?.stageSeconds.labels({ pipeline: deps.pipeline, stage: name });
  const ingestSeconds = stage('ingest');
  const modelsSeconds = stage('models');
  const decisionSeconds = stage('decision');
  // Ingestion's own failures are typed (decode, schema, features); the fallback classifies what it did not type.
  const deadLetter = (record: InboundRecord, err: unknown, where: { step?: string; model?: string | undefined } = {}, fallback: typeof VerdictError = FeatureError): Outcome => {
    const error = asVerdictError(err, fallback);
    metrics?.deadLetters.inc({ pipeline: deps.pipeline, code: error.code });
    return {
      kind: 'dead-letter',
      record,
      error,
      attempts: 1,
      ...(where.step === undefined ? {} : { step: where.step }),
      ...(where.model === undefined ? {} : { model: where.model }),
    };
  };

  const decideJoined = (ev: IngestedEvent, join: JoinResult): Outcome => {
    const failed = undecidable(join);
    if (failed !== null) return deadLetter(ev.record, failed.error, { step: failed.step, model: failed.model });
    try {
      const decision = decider.decide({
        event: ev.event,
        eventId: ev.id,
        key: ev.key,
        join,
        timings: { ingest: toMicros(ev.ingestMs), models: toMicros(join.closedAt - join.openedAt) },
      });
      const total = toMicros(scheduler.now() - ev.receivedAt);
      return { kind: 'decision', record: ev.record, decision: { ...decision, latencyMs: { ...decision.latencyMs, total } } };
    } catch (err) {
      // The decider catches rule failures itself: whatever escapes it is not the record's fault.
      return deadLetter(ev.record, err, {}, InternalError);
    }
  };

  return async (records, events) => {
    eventsIn?.inc(records.length);
    const outcomes = new Array<Outcome | undefined>(records.length).fill(undefined);
    const ingested: IngestedEvent[] = [];
    const positions: number[] = [];
    const started = scheduler.now();
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      const event = events?.[i];
      if (record.invalid !== undefined) {
        outcomes[i] = deadLetter(record, record.invalid);
        continue;
      }
      const now = scheduler.now();
      try {
        ingested.push(event === undefined ? ingestor.fromRecord(record, now) : ingestor.fromEvent(event, record, now));
        positions.push(i);
      } catch (err) {
        outcomes[i] = deadLetter(record, err);
      }
    }
    const routedAt = scheduler.now();
    ingestSeconds?.observe((routedAt - started) / 1000);
    if (ingested.length > 0) {
      let joins: JoinResult[];
      try {
        joins = await router.route(ingested);
      } catch (err) {
        // The router settles every step itself; reaching here is a bug, and its records still get an outcome.
        for (const p of positions) outcomes[p] = deadLetter(records[p]!, err, {}, InternalError);
        return outcomes as Outcome[];
      }
      const decidedAt = scheduler.now();
      modelsSeconds?.observe((decidedAt - routedAt) / 1000);
      for (let j = 0; j < ingested.length; j++) outcomes[positions[j]!] = decideJoined(ingested[j]!, joins[j]!);
      decisionSeconds?.observe((scheduler.now() - decidedAt) / 1000);
    }
    return outcomes as Outcome[];
  };
}
