/**
 * The per-event core: one block of records (up to `stream.blockSize` consecutive records of one
 * partition, as the stream admitted them, or one event from the API) through the stages, in order. Each
 * stage is one file; no transport, no threads. Nothing rejects: every record ends as one outcome, a
 * decision or a dead letter with its typed error.
 *
 *   ingest   ingest/ingest-block.ts        decode → validate → identify → state values → features
 *   route    route/event-router.ts         which steps apply (CEL `when`), with their timeouts
 *   infer    actors/model-actor.ts         mailbox → micro-batch → runner → onnxruntime (runtime/step-executor.ts)
 *   join     join/deadline-join.ts         each step ok | skipped | error | timeout, closed at the deadline
 *   decide   decide/decide-event.ts        CEL rules → action, score, reasons, versions, completeness
 *   encode   encode-outcome.ts             decision | byte-exact dead letter, as output records
 *
 * Beside them, off the block's path: a step's shadow (route/shadow-runs.ts) runs the same rows, and once the
 * block is decided its shadow decisions are compared with the ones made (decide/shadow-decisions.ts). The
 * block's outcomes never wait for it.
 */
import type { Clock } from '../core/clock.js';
import type { Metrics } from '../core/metrics.js';
import { InternalError } from '../core/errors.js';
import { deadLetterer } from './dead-letters.js';
import { decideEvent, type Decider } from './decide/decide-event.js';
import type { Decision } from './decide/decision-actor.js';
import type { ShadowDecisions } from './decide/shadow-decisions.js';
import { encodeOutcome, type DecisionOutput } from './encode-outcome.js';
import { ingestBlock } from './ingest/ingest-block.js';
import type { Ingestor } from './ingest/ingest.js';
import { toEncodedOutcome, type EncodedOutcome, type Outcome } from './outcome.js';
import type { InboundRecord } from './record.js';
import type { ModelBindings } from './route/bindings.js';
import type { EventRouter } from './route/event-router.js';
import type { StateRead } from './state/types.js';

export interface BlockProcessorDeps {
  readonly pipeline: string;
  readonly ingestor: Ingestor;
  readonly router: EventRouter;
  readonly decider: Decider;
  readonly scheduler: Clock;
  readonly metrics?: Metrics;
  /** Compares shadow decisions with the ones made; absent when no step has a shadow (then none run). */
  readonly shadows?: ShadowDecisions;
}

/** What a block brings besides its records; every field optional. */
export interface BlockInput {
  /** One decoded event per record, replacing decoding (the API path). */
  readonly events?: readonly Record<string, unknown>[] | undefined;
  /** The model versions the block runs (route/bindings.ts); default: the compiled ones. */
  readonly bindings?: ModelBindings | undefined;
  /**
   * One StateRead per record, by position (pipeline/state/types.ts), from the state stage: the values each
   * event saw, or the error its record is dead-lettered with. Required by a pipeline that declares state
   * (a record without one that ingests fine is dead-lettered with INTERNAL_ERROR); ignored otherwise.
   */
  readonly states?: readonly (StateRead | undefined)[] | undefined;
}

/** Records in, one outcome per record out, in the same order. */
export type BlockProcessor = (records: readonly InboundRecord[], input?: BlockInput) => Promise<Outcome[]>;

export function createBlockProcessor(deps: BlockProcessorDeps): BlockProcessor {
  const { ingestor, router, decider, scheduler, metrics, pipeline, shadows } = deps;
  const now = (): number => scheduler.now();
  const deadLetter = deadLetterer(pipeline, metrics);
  // Label children resolved once: a labelled call hashes its label set on every call.
  const eventsIn = metrics?.eventsIn.labels({ pipeline });
  const seconds = (stage: string) => metrics?.stageSeconds.labels({ pipeline, stage });
  const [ingestSeconds, modelsSeconds, decisionSeconds] = [seconds('ingest'), seconds('models'), seconds('decision')];

  return async (records, input = {}) => {
    eventsIn?.inc(records.length);
    const outcomes = new Array<Outcome | undefined>(records.length).fill(undefined);
    const started = now();
    const { ingested, positions } = ingestBlock(records, outcomes, input, { ingestor, deadLetter, clock: scheduler });
    const routedAt = now();
    ingestSeconds?.observe((routedAt - started) / 1000);
    if (ingested.length === 0) return outcomes as Outcome[];
    const shadow = shadows?.open(ingested);
    // Route, infer and join: the router settles every step of every event, within the join deadline.
    const joins = await router.route(ingested, input.bindings, shadow?.observer ?? null).catch((err: unknown) => err as Error);
    if (joins instanceof Error) {
      shadow?.decided(null, []);
      // The router catches every step failure itself; reaching here is a bug, and its records still get an outcome.
      for (const p of positions) outcomes[p] = deadLetter(records[p]!, joins, {}, InternalError);
      return outcomes as Outcome[];
    }
    const decidedAt = now();
    modelsSeconds?.observe((decidedAt - routedAt) / 1000);
    for (let j = 0; j < ingested.length; j++) outcomes[positions[j]!] = decideEvent(ingested[j]!, joins[j]!, { decider, deadLetter, clock: scheduler });
    decisionSeconds?.observe((now() - decidedAt) / 1000);
    // The shadow comparisons run after this block's outcomes are handed on (they wait on a promise).
    shadow?.decided(joins, positions.map((p) => decisionOf(outcomes[p])));
    return outcomes as Outcome[];
  };
}

function decisionOf(outcome: Outcome | undefined): Decision | null {
  return outcome?.kind === 'decision' ? outcome.decision : null;
}

/** The encode stage: each outcome as the record the sink writes (decisions topic or dead-letter topic). */
export function encodeBlock(outcomes: readonly Outcome[], output: DecisionOutput & { readonly deadLetter: string }, pipeline: string): EncodedOutcome[] {
  return outcomes.map((o) => toEncodedOutcome(o, encodeOutcome(o, output, pipeline)));
}
