/**
 * The router: walks a block of events (the records the stream processes together) through the pipeline's
 * step graph. A step runs once per block, as one call to its model actor with the rows of the events it
 * applies to; steps whose dependencies have settled for the block start at once, so independent steps run
 * concurrently. A step's CEL `when` decides, per event, whether it applies. Every step of every event is
 * settled exactly once in the block's join: ok, error, timeout, or skipped (condition false, or a
 * dependency that produced nothing for that event).
 *
 * A step's rows run on the versions its bindings give (bindings.ts): the primary, or its canary for the
 * events whose key falls in the canary's share (key-split.ts); each event's report names the version it ran.
 * A shadow runs the same rows beside them; its results go to the block's ShadowObserver (shadow-runs.ts),
 * never to the join, and the step settles without waiting for it.
 */
import type { CompiledPipeline, CompiledStep } from '../../config/compiled.js';
import { celLimitsOf, compileExpression } from '../../config/rules.js';
import type { Clock } from '../../core/clock.js';
import { asVerdictError, ModelExecutionError, ModelTimeoutError, RuleCostExceededError, RuleError } from '../../core/errors.js';
import type { ResolvedModel, RowInputs, RowOutputs, RowResults } from '../../models/types.js';
import { compiledBindings, type ModelBindings, type StepBinding } from './bindings.js';
import type { IngestedEvent } from '../ingest/ingest.js';
import type { JoinResult, StepReport } from '../join/types.js';
import { canaryThreshold, keyHash32 } from './key-split.js';
import { ShadowGate, type ShadowObserver } from './shadow-runs.js';
import { buildStepInputs } from './step-inputs.js';

/** What the router needs of a model actor: rows in, each row's outputs or error out (step timeout included). Never rejects. */
export interface StepExecutor {
  infer(rows: readonly RowInputs[]): Promise<RowResults>;
}

/**
 * Where the router gets the executor for a step's model version: the engine keeps one per step and version
 * (its step timeout, its model actor), so a block bound to a new version (bindings.ts) finds it by ref.
 */
export interface StepExecutors {
  executorFor(step: number, model: ResolvedModel): StepExecutor;
}

/** What the router needs of the join: a window per block, settled per event and step. */
export interface BlockJoin {
  open(eventIds: readonly string[]): {
    report(event: number, step: number, report: StepReport): void;
    readonly closed: Promise<JoinResult[]>;
    /** Closes the window first if its deadline has passed by the clock (see JoinBlock.expireIfDue). */
    expireIfDue(): void;
  };
}

type Condition = ReturnType<typeof compileExpression>;

interface RoutedStep {
  readonly step: CompiledStep;
  readonly condition: Condition | null;
  readonly dependents: readonly number[];
  readonly dependsOn: readonly number[];
}

/** Per-block state: which steps have run, and each event's ok outputs (what later steps and CEL read). */
interface BlockRun {
  readonly events: readonly IngestedEvent[];
  /** The model versions this block runs, fixed when it was routed. */
  readonly bindings: ModelBindings;
  readonly join: ReturnType<BlockJoin['open']>;
  /** Where the block's shadow calls are reported; null: no shadow runs for this block. */
  readonly shadows: ShadowObserver | null;
  readonly outputs: Array<Record<string, RowOutputs>>;
  /** Per step: 0 not started, 1 running, 2 settled for every event of the block. */
  readonly stepState: Uint8Array;
}

/** One call of a step for a block: the rows one version runs, and their positions among the step's rows. */
interface VersionCall {
  readonly model: ResolvedModel;
  readonly rows: readonly RowInputs[];
  /** Positions in the step's rows; null when the call has all of them, in order. */
  readonly positions: readonly number[] | null;
}

const DEPENDENCY_SKIPPED: StepReport = { status: 'skipped', reason: 'dependency produced no output' };
const CONDITION_FALSE: StepReport = { status: 'skipped', reason: 'when is false' };

export class EventRouter {
  readonly #steps: readonly RoutedStep[];
  readonly #executors: StepExecutors;
  readonly #compiled: ModelBindings;
  readonly #roots: readonly number[];
  readonly #join: BlockJoin;
  readonly #clock: Pick<Clock, 'now'>;
  readonly #shadowGate: ShadowGate;

  /** `executors` gives each step's executor by model version; `clock` times each step's latency (`latencyMs` in its report). */
  constructor(pipeline: CompiledPipeline, executors: StepExecutors, join: BlockJoin, clock: Pick<Clock, 'now'>) {
    const index = new Map(pipeline.steps.map((s, i) => [s.id, i]));
    this.#executors = executors;
    this.#compiled = compiledBindings(pipeline);
    const limits = celLimitsOf(pipeline.limits, pipeline.input.limits);
    this.#steps = pipeline.steps.map((step): RoutedStep => {
      return {
        step,
        condition: step.when === null ? null : compileExpression(step.when, `steps.${step.id}.when`, 'condition', limits),
        dependsOn: step.dependsOn.map((d) => index.get(d) ?? -1),
        dependents: pipeline.steps.filter((s) => s.dependsOn.includes(step.id)).map((s) => index.get(s.id) ?? -1),
      };
    });
    this.#roots = this.#steps.flatMap((s, i) => (s.dependsOn.length === 0 ? [i] : []));
    this.#join = join;
    this.#clock = clock;
    this.#shadowGate = new ShadowGate(pipeline.steps.length);
  }

  /**
   * Starts the block's steps and resolves, one JoinResult per event in order, when its join closes (all
   * settled, or the deadline). `bindings`: the model versions the block runs (default: the compiled ones).
   * `shadows`: where the block's shadow calls go; without one, shadows are not run.
   */
  route(events: readonly IngestedEvent[], bindings: ModelBindings = this.#compiled, shadows: ShadowObserver | null = null): Promise<JoinResult[]> {
    const run: BlockRun = {
      events,
      bindings,
      shadows,
      join: this.#join.open(events.map((ev) => ev.id)),
      outputs: events.map(() => ({})),
      stepState: new Uint8Array(this.#steps.length),
    };
    for (const i of this.#roots) this.#start(run, i);
    return run.join.closed;
  }

  #start(run: BlockRun, i: number): void {
    const routed = this.#steps[i]!;
    const binding = run.bindings.steps[i]!;
    run.stepState[i] = 1;
    const rows: RowInputs[] = [];
    const rowEvents: number[] = [];
    for (let e = 0; e < run.events.length; e++) {
      const report = this.#prepare(run, routed, binding, e, rows);
      if (report === null) rowEvents.push(e);
      else run.join.report(e, i, report);
    }
    if (rows.length === 0) {
      this.#finish(run, i);
      return;
    }
    const calls = splitByVersion(binding, run.events, rows, rowEvents);
    // With a shadow, each row's deciding latency is kept for the comparison (NaN until its call answers).
    const shadow = run.shadows === null ? null : binding.shadow;
    const decidingLatencyMs = shadow === null ? null : new Float64Array(rows.length).fill(NaN);
    const started = this.#clock.now();
    const done = Promise.all(calls.map((call) => this.#executors.executorFor(i, call.model).infer(call.rows).then(({ outputs, errors }) => {
      // An answer after the join's deadline is late even if this thread was too busy to run the deadline's timer.
      run.join.expireIfDue();
      const latencyMs = this.#clock.now() - started;
      const { model, positions } = call;
      for (let c = 0; c < call.rows.length; c++) {
        const r = positions === null ? c : positions[c]!;
        if (decidingLatencyMs !== null) decidingLatencyMs[r] = latencyMs;
        this.#report(run, i, rowEvents[r]!, model, outputs[c], errors[c], latencyMs);
      }
    })));
    if (shadow !== null && decidingLatencyMs !== null) this.#shadow(run, i, shadow, rows, rowEvents, started, done, decidingLatencyMs);
    void done.then(() => this.#finish(run, i));
  }

  /** One event's result for step `i`, reported to the join; an ok output is kept for later steps and CEL. */
  #report(run: BlockRun, i: number, e: number, model: ResolvedModel, out: RowOutputs | undefined, err: unknown, latencyMs: number): void {
    if (out !== undefined) {
      run.outputs[e]![this.#steps[i]!.step.id] = out;
      run.join.report(e, i, { status: 'ok', outputs: out, model: model.ref, latencyMs });
      return;
    }
    // The model actor settles rows with typed errors; anything else it hands back is the model's failure.
    const error = asVerdictError(err, ModelExecutionError);
    run.join.report(e, i, error.code === ModelTimeoutError.code
      ? { status: 'timeout', model: model.ref }
      : { status: 'error', error: error.toJSON(), model: model.ref });
  }

  /**
   * Runs the step's rows on its shadow version, unless this thread's shadow rows of the step are at their
   * bound (shadow-runs.ts): then the rows are reported dropped. The result goes to the block's observer once
   * the shadow and the deciding calls have all answered; the step does not wait for it.
   */
  #shadow(
    run: BlockRun, i: number, model: ResolvedModel, rows: readonly RowInputs[], rowEvents: readonly number[],
    started: number, decided: Promise<unknown>, decidingLatencyMs: Float64Array,
  ): void {
    const observer = run.shadows!;
    if (!this.#shadowGate.tryAcquire(i, rows.length)) {
      observer.dropped(i, rows.length, 'backpressure');
      return;
    }
    const shadow = this.#executors.executorFor(i, model).infer(rows).then((results) => {
      this.#shadowGate.release(i, rows.length);
      return { ...results, latencyMs: this.#clock.now() - started };
    });
    observer.ran({
      step: i,
      model,
      events: rowEvents,
      result: Promise.all([shadow, decided]).then(([results]) => ({ ...results, decidingLatencyMs })),
    });
  }

  /** Adds event `e`'s row for the step to `rows` and returns null, or returns why the step does not run for it. */
  #prepare(run: BlockRun, routed: RoutedStep, binding: StepBinding, e: number, rows: RowInputs[]): StepReport | null {
    const { step } = routed;
    const outputs = run.outputs[e]!;
    for (const d of routed.dependsOn) if (outputs[this.#steps[d]!.step.id] === undefined) return DEPENDENCY_SKIPPED;
    const ev = run.events[e]!;
    if (routed.condition !== null) {
      let applies: unknown;
      try {
        applies = routed.condition({ event: ev.event, steps: outputs, state: ev.state });
      } catch (err) {
        // A cost cut-off keeps its code; anything else CEL throws is a RuleError.
        const Failure = err instanceof RuleCostExceededError ? RuleCostExceededError : RuleError;
        const error = new Failure(`steps.${step.id}.when: ${(err as Error).message}`, { cause: err });
        return { status: 'error', error: error.toJSON(), model: versionFor(binding, ev.key).ref };
      }
      if (applies !== true) return CONDITION_FALSE;
    }
    try {
      rows.push(buildStepInputs(step, ev, outputs));
    } catch (err) {
      return { status: 'error', error: asVerdictError(err).toJSON(), model: versionFor(binding, ev.key).ref };
    }
    return null;
  }

  /** The step has settled for the whole block: start each dependent whose dependencies all have too. */
  #finish(run: BlockRun, i: number): void {
    run.stepState[i] = 2;
    for (const d of this.#steps[i]!.dependents) {
      if (run.stepState[d] === 0 && this.#steps[d]!.dependsOn.every((x) => run.stepState[x] === 2)) this.#start(run, d);
    }
  }
}

/** The version that decides for an event with decision key `key`: the canary when the key is in its share. */
export function versionFor(binding: StepBinding, key: string): ResolvedModel {
  const { canary } = binding;
  return canary !== null && keyHash32(key) < canaryThreshold(canary.percent) ? canary.model : binding.primary;
}

/** A step's rows split between its primary and its canary by each event's key; one call when no canary. */
function splitByVersion(binding: StepBinding, events: readonly IngestedEvent[], rows: readonly RowInputs[], rowEvents: readonly number[]): VersionCall[] {
  const { canary, primary } = binding;
  if (canary === null) return [{ model: primary, rows, positions: null }];
  const threshold = canaryThreshold(canary.percent);
  const split = { primary: { rows: [] as RowInputs[], positions: [] as number[] }, canary: { rows: [] as RowInputs[], positions: [] as number[] } };
  for (let r = 0; r < rows.length; r++) {
    const side = keyHash32(events[rowEvents[r]!]!.key) < threshold ? split.canary : split.primary;
    side.rows.push(rows[r]!);
    side.positions.push(r);
  }
  const calls: VersionCall[] = [];
  if (split.primary.rows.length > 0) calls.push({ model: primary, ...split.primary });
  if (split.canary.rows.length > 0) calls.push({ model: canary.model, ...split.canary });
  return calls;
}
