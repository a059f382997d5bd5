/**
 * Shadow decisions: what a step's shadow version would have decided. Once a block is decided and a step's
 * shadow results are in (pipeline/route/shadow-runs.ts), each event's join is taken as it closed, the
 * step's outputs replaced by the shadow's, and the decision rules (score, rules, default, incomplete
 * policy) evaluated again, counted nowhere (DecisionActor.evaluate). The result is compared with the
 * decision that was made, in metrics only: it never changes the decision, and the block's outcomes never
 * wait for it.
 *
 * Only the rules are re-evaluated: later steps that read the shadowed step (their inputs, their `when`)
 * are not run again, so they keep the outputs they computed from the primary's. An event is compared when
 * it was decided (not dead-lettered), its primary step was ok and its shadow row was ok. A shadow row that
 * did not answer within the step's time bound counts as dropped for `timeout` (under overload most of these
 * rows were withdrawn before they ran: work not done, see runtime/step-executor.ts); one that failed
 * otherwise counts as dropped for `failed`.
 */
import { ModelTimeoutError } from '../../core/errors.js';
import type { Metrics } from '../../core/metrics.js';
import type { RowOutputs } from '../../models/types.js';
import type { IngestedEvent } from '../ingest/ingest.js';
import type { JoinResult } from '../join/types.js';
import type { ShadowObserver, ShadowResult, ShadowRun } from '../route/shadow-runs.js';
import type { Decider } from './decide-event.js';
import type { Decision } from './decision-actor.js';

/** One side of a comparison: a decision's action, score and reasons, with the step's version and outputs. */
export interface ShadowSide {
  readonly model: string;
  readonly action: string;
  readonly score: number | null;
  readonly reasons: readonly string[];
  readonly outputs: RowOutputs;
}

/** One event's two decisions side by side: the one made, and the one the step's shadow would have made. */
export interface ShadowComparison {
  readonly eventId: string;
  /** The decision's key. */
  readonly key: string;
  /** The input record's key bytes (the decision record's key), null when it had none. */
  readonly recordKey: Buffer | null;
  readonly step: string;
  readonly primary: ShadowSide;
  readonly shadow: ShadowSide;
  readonly agree: boolean;
}

export interface ShadowDecisionsOptions {
  readonly pipeline: string;
  /** Step ids in pipeline order (the router's step indices). */
  readonly steps: readonly string[];
  /** Evaluates the rules without counting (DecisionActor.evaluate). */
  readonly decider: Pick<Decider, 'evaluate'>;
  readonly metrics?: Metrics;
  /** Called with every comparison, after it is counted (e.g. to write the shadow topic). */
  readonly onComparison?: (comparison: ShadowComparison) => void;
}

/** A block's side of the shadow: the observer to route it with, and the call that says it was decided. */
export interface ShadowBlock {
  readonly observer: ShadowObserver;
  /**
   * The block's joins and decisions, by routed event (null where the event was dead-lettered); `joins`
   * null when the block could not be decided at all. Call exactly once, after the decisions are made.
   */
  decided(joins: readonly JoinResult[] | null, decisions: readonly (Decision | null)[]): void;
}

interface Decided {
  readonly joins: readonly JoinResult[] | null;
  readonly decisions: readonly (Decision | null)[];
}

type Inc = { inc(n?: number): void };
type Observe = { observe(value: number): void };

/** Compares shadow decisions with the decisions made, per block, and counts them (one per engine). */
export class ShadowDecisions {
  readonly #options: ShadowDecisionsOptions;
  /** Comparisons started and not yet counted. */
  #pending = 0;
  #idleWaiters: Array<() => void> = [];
  /** Label children, resolved once each: a labelled call hashes its label set every time. */
  readonly #agreement = new Map<string, Inc>();
  readonly #dropped = new Map<string, Inc>();
  readonly #scoreDifference: readonly (Observe | undefined)[];
  readonly #latencyDifference: readonly (Observe | undefined)[];

  constructor(options: ShadowDecisionsOptions) {
    this.#options = options;
    const { metrics, pipeline } = options;
    this.#scoreDifference = options.steps.map((step) => metrics?.shadowScoreDifference.labels({ pipeline, step }));
    this.#latencyDifference = options.steps.map((step) => metrics?.shadowLatencyDifference.labels({ pipeline, step }));
  }

  /** Opens a block of routed `events` (the router's event order). */
  open(events: readonly IngestedEvent[]): ShadowBlock {
    let resolve!: (decided: Decided) => void;
    const decided = new Promise<Decided>((r) => { resolve = r; });
    return {
      observer: {
        ran: (run) => this.#track(Promise.all([decided, run.result]).then(([d, result]) => this.#compare(events, d, run, result))),
        dropped: (step, rows, reason) => this.#countDropped(step, reason, rows),
      },
      decided: (joins, decisions) => resolve({ joins, decisions }),
    };
  }

  /** Resolves once every comparison started so far has been counted. */
  settled(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #track(comparison: Promise<void>): void {
    this.#pending++;
    const done = (): void => {
      if (--this.#pending > 0) return;
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    };
    comparison.then(done, done);
  }

  #compare(events: readonly IngestedEvent[], { joins, decisions }: Decided, run: ShadowRun, result: ShadowResult): void {
    const { decider, onComparison } = this.#options;
    const stepId = this.#options.steps[run.step]!;
    const shadowRef = run.model.ref;
    let failed = 0;
    let timedOut = 0;
    for (let r = 0; r < run.events.length; r++) {
      const shadowOutputs = result.outputs[r];
      if (shadowOutputs === undefined) {
        if (result.errors[r]?.code === ModelTimeoutError.code) timedOut++;
        else failed++;
        continue;
      }
      const e = run.events[r]!;
      const join = joins?.[e];
      const decision = decisions[e];
      if (join === undefined || decision === null || decision === undefined || join.completeness[stepId] !== 'ok') continue;
      const ev = events[e]!;
      const shadow = decider.evaluate({
        event: ev.event,
        eventId: ev.id,
        key: ev.key,
        join: substituted(join, stepId, shadowOutputs, shadowRef),
        state: ev.state,
      });
      const agree = shadow.action === decision.action;
      this.#countAgreement(stepId, decision.action, shadow.action, agree);
      if (decision.score !== null && shadow.score !== null) this.#scoreDifference[run.step]?.observe(shadow.score - decision.score);
      const deciding = result.decidingLatencyMs[r] ?? NaN;
      if (Number.isFinite(deciding)) this.#latencyDifference[run.step]?.observe((result.latencyMs - deciding) / 1000);
      onComparison?.({
        eventId: ev.id,
        key: ev.key,
        recordKey: ev.record.key,
        step: stepId,
        primary: { model: decision.models[stepId] ?? '', action: decision.action, score: decision.score, reasons: decision.reasons, outputs: decision.outputs[stepId] ?? {} },
        shadow: { model: shadowRef, action: shadow.action, score: shadow.score, reasons: shadow.reasons, outputs: shadowOutputs },
        agree,
      });
    }
    if (failed > 0) this.#countDropped(run.step, 'failed', failed);
    if (timedOut > 0) this.#countDropped(run.step, 'timeout', timedOut);
  }

  #countAgreement(step: string, primary: string, shadow: string, agree: boolean): void {
    const { metrics, pipeline } = this.#options;
    if (metrics === undefined) return;
    const key = `${step}\u0000${primary}\u0000${shadow}`;
    let counter = this.#agreement.get(key);
    if (counter === undefined) {
      counter = metrics.shadowDecisions.labels({ pipeline, step, primary_action: primary, shadow_action: shadow, agree: String(agree) });
      this.#agreement.set(key, counter);
    }
    counter.inc();
  }

  #countDropped(step: number, reason: 'backpressure' | 'timeout' | 'failed', rows: number): void {
    const { metrics, pipeline, steps } = this.#options;
    if (metrics === undefined) return;
    const key = `${step}\u0000${reason}`;
    let counter = this.#dropped.get(key);
    if (counter === undefined) {
      counter = metrics.shadowDropped.labels({ pipeline, step: steps[step] ?? String(step), reason });
      this.#dropped.set(key, counter);
    }
    counter.inc(rows);
  }
}

/** The join as it closed, with step `step`'s outputs (and version) replaced by the shadow's. */
function substituted(join: JoinResult, step: string, outputs: RowOutputs, model: string): JoinResult {
  return { ...join, outputs: { ...join.outputs, [step]: outputs }, models: { ...join.models, [step]: model } };
}
