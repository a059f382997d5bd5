/**
 * One record's way through the core: ingest → route through the model steps → join → decide. Never
 * rejects: every failure becomes a dead letter with its typed error, so no record is silently dropped.
 */
import type { SchedulerLike } from 'rxjs';
import type { Decision, DecisionInput } from '../actors/decision-actor.js';
import { asVerdictError, FeatureError, type VerdictError } from '../core/errors.js';
import type { Metrics } from '../core/metrics.js';
import type { IngestedEvent, Ingestor } from './ingest/ingest.js';
import type { JoinResult } from './join/types.js';
import type { Outcome } from './outcome.js';
import type { EventRouter } from './route/event-router.js';
import type { InboundRecord } from './types.js';

export interface Decider {
  decide(input: DecisionInput): Decision;
}

export interface RecordProcessorDeps {
  readonly pipeline: string;
  readonly ingestor: Ingestor;
  readonly router: EventRouter;
  readonly decider: Decider;
  readonly scheduler: SchedulerLike;
  readonly metrics?: Metrics;
}

/**
 * A join with no model output and a non-retryable step error cannot be decided: the record itself is at
 * fault (bad input for a model). Timeouts and other transient failures go to the incomplete-join policy.
 */
function undecidable(join: JoinResult): { step: string; model: string | undefined; error: VerdictError } | null {
  if (Object.keys(join.outputs).length > 0) return null;
  for (const [step, serialized] of Object.entries(join.errors)) {
    const error = asVerdictError(serialized);
    if (!error.retryable) return { step, model: join.models[step], error };
  }
  return null;
}

export function createRecordProcessor(deps: RecordProcessorDeps): (record: InboundRecord, event?: Record<string, unknown>) => Promise<Outcome> {
  const { ingestor, router, decider, scheduler, metrics } = deps;
  // Label children resolved once: a labelled call hashes its label set, on every event.
  const eventsIn = metrics?.eventsIn.labels({ pipeline: deps.pipeline });
  const stage = (name: string) => metrics?.stageSeconds.labels({ pipeline: deps.pipeline, stage: name });
  const ingestSeconds = stage('ingest');
  const modelsSeconds = stage('models');
  const decisionSeconds = stage('decision');
  const deadLetter = (record: InboundRecord, err: unknown, where: { step?: string; model?: string | undefined } = {}): Outcome => {
    const error = asVerdictError(err, FeatureError);
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
    const decidedAt = scheduler.now();
    try {
      const decision = decider.decide({
        event: ev.event,
        eventId: ev.id,
        key: ev.key,
        join,
        timings: { ingest: ev.ingestMs, models: join.closedAt - join.openedAt },
      });
      const total = scheduler.now() - ev.receivedAt;
      ingestSeconds?.observe(ev.ingestMs / 1000);
      modelsSeconds?.observe((join.closedAt - join.openedAt) / 1000);
      decisionSeconds?.observe((scheduler.now() - decidedAt) / 1000);
      return { kind: 'decision', record: ev.record, decision: { ...decision, latencyMs: { ...decision.latencyMs, total } } };
    } catch (err) {
      return deadLetter(ev.record, err);
    }
  };

  return (record, event) => {
    eventsIn?.inc();
    const now = scheduler.now();
    let ev: IngestedEvent;
    try {
      ev = event === undefined ? ingestor.fromRecord(record, now) : ingestor.fromEvent(event, record, now);
    } catch (err) {
      return Promise.resolve(deadLetter(record, err));
    }
    return router.route(ev).then(
      (join) => decideJoined(ev, join),
      (err: unknown) => deadLetter(record, err),
    );
  };
}
