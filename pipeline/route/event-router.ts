/**
 * The router: walks a block of events (the records the stream processes together) through the pipeline's
 * step graph. A step runs once per block, as one call to its model actor with the rows of the events it
 * applies to; steps whose dependencies have settled for the block start at once, so independent steps run
 * concurrently. A step's CEL `when` decides, per event, whether it applies. Every step of every event is
 * settled exactly once in the block's join: ok, error, timeout, or skipped (condition false, or a
 * dependency that produced nothing for that event).
 */
import type { CompiledPipeline, CompiledStep } from '../../config/compiled.js';
import { compileExpression } from '../../config/rules.js';
import type { Clock } from '../../core/clock.js';
import { asVerdictError, ModelExecutionError, ModelTimeoutError, RuleError } from '../../core/errors.js';
import type { ResolvedModel, RowInputs, RowOutputs, RowResults } from '../../models/types.js';
import { compiledBindings, type ModelBindings } from './bindings.js';
import type { IngestedEvent } from '../ingest/ingest.js';
import type { JoinResult, StepReport } from '../join/types.js';
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
  readonly outputs: Array<Record<string, RowOutputs>>;
  /** Per step: 0 not started, 1 running, 2 settled for every event of the block. */
  readonly stepState: Uint8Array;
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

  /** `executors` gives each step's executor by model version; `clock` times each step's latency (`latencyMs` in its report). */
  constructor(pipeline: CompiledPipeline, executors: StepExecutors, join: BlockJoin, clock: Pick<Clock, 'now'>) {
    const index = new Map(pipeline.steps.map((s, i) => [s.id, i]));
    this.#executors = executors;
    this.#compiled = compiledBindings(pipeline);
    this.#steps = pipeline.steps.map((step): RoutedStep => {
      return {
        step,
        condition: step.when === null ? null : compileExpression(step.when, `steps.${step.id}.when`, 'condition'),
        dependsOn: step.dependsOn.map((d) => index.get(d) ?? -1),
        dependents: pipeline.steps.filter((s) => s.dependsOn.includes(step.id)).map((s) => index.get(s.id) ?? -1),
      };
    });
    this.#roots = this.#steps.flatMap((s, i) => (s.dependsOn.length === 0 ? [i] : []));
    this.#join = join;
    this.#clock = clock;
  }

  /**
   * Starts the block's steps and resolves, one JoinResult per event in order, when its join closes (all
   * settled, or the deadline). `bindings`: the model versions the block runs (default: the compiled ones).
   */
  route(events: readonly IngestedEvent[], bindings: ModelBindings = this.#compiled): Promise<JoinResult[]> {
    const run: BlockRun = {
      events,
      bindings,
      join: this.#join.open(events.map((ev) => ev.id)),
      outputs: events.map(() => ({})),
      stepState: new Uint8Array(this.#steps.length),
    };
    for (const i of this.#roots) this.#start(run, i);
    return run.join.closed;
  }

  #start(run: BlockRun, i: number): void {
    const routed = this.#steps[i]!;
    const { step } = routed;
    run.stepState[i] = 1;
    const rows: RowInputs[] = [];
    const rowEvents: number[] = [];
    for (let e = 0; e < run.events.length; e++) {
      const report = this.#prepare(run, routed, e, rows);
      if (report === null) rowEvents.push(e);
      else run.join.report(e, i, report);
    }
    if (rows.length === 0) {
      this.#finish(run, i);
      return;
    }
    const model = run.bindings.steps[i]!.primary;
    const started = this.#clock.now();
    void this.#executors.executorFor(i, model).infer(rows).then(({ outputs, errors }) => {
      const latencyMs = this.#clock.now() - started;
      for (let r = 0; r < rowEvents.length; r++) {
        const e = rowEvents[r]!;
        const out = outputs[r];
        if (out !== undefined) {
          run.outputs[e]![step.id] = out;
          run.join.report(e, i, { status: 'ok', outputs: out, model: model.ref, latencyMs });
        } else {
          // The model actor settles rows with typed errors; anything else it hands back is the model's failure.
          const error = asVerdictError(errors[r], ModelExecutionError);
          run.join.report(e, i, error.code === ModelTimeoutError.code
            ? { status: 'timeout', model: model.ref }
            : { status: 'error', error: error.toJSON(), model: model.ref });
        }
      }
      this.#finish(run, i);
    });
  }

  /** Adds event `e`'s row for the step to `rows` and returns null, or returns why the step does not run for it. */
  #prepare(run: BlockRun, routed: RoutedStep, e: number, rows: RowInputs[]): StepReport | null {
    const { step } = routed;
    const outputs = run.outputs[e]!;
    for (const d of routed.dependsOn) if (outputs[this.#steps[d]!.step.id] === undefined) return DEPENDENCY_SKIPPED;
    const ev = run.events[e]!;
    if (routed.condition !== null) {
      let applies: unknown;
      try {
        applies = routed.condition({ event: ev.event, steps: outputs });
      } catch (err) {
        const error = new RuleError(`steps.${step.id}.when: ${(err as Error).message}`, { cause: err });
        return { status: 'error', error: error.toJSON(), model: run.bindings.steps[step.index]!.primary.ref };
      }
      if (applies !== true) return CONDITION_FALSE;
    }
    try {
      rows.push(buildStepInputs(step, ev, outputs));
    } catch (err) {
      return { status: 'error', error: asVerdictError(err).toJSON(), model: run.bindings.steps[step.index]!.primary.ref };
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
