/**
 * The router: walks one event through the pipeline's step graph. Steps whose dependencies have settled run
 * at once, so independent steps run concurrently; a step's CEL `when` decides whether it applies. Every
 * step is settled exactly once in the event's join window: ok, error, or skipped (condition false, or a
 * dependency that produced nothing).
 */
import type { CompiledPipeline, CompiledStep } from '../../config/compiled.js';
import { compileExpression } from '../../actors/rules.js';
import { asVerdictError, RuleError } from '../../core/errors.js';
import type { RowInputs, RowOutputs } from '../../models/types.js';
import type { IngestedEvent } from '../ingest/ingest.js';
import type { JoinResult, StepReport } from '../join/types.js';
import { buildStepInputs } from './step-inputs.js';

/** What the router needs of a model actor: one row in, its outputs out (the step's timeout included). */
export interface StepExecutor {
  infer(row: RowInputs): Promise<RowOutputs>;
}

/** What the router needs of the join. */
export interface EventJoin {
  open(eventId: string): Promise<JoinResult>;
  report(eventId: string, stepId: string, report: StepReport): void;
}

type Condition = ReturnType<typeof compileExpression>;

interface RoutedStep {
  readonly step: CompiledStep;
  readonly executor: StepExecutor;
  readonly condition: Condition | null;
  readonly dependents: readonly number[];
  readonly dependsOn: readonly number[];
}

/** Per-event state: which steps have settled and what the ok ones produced. */
interface EventRun {
  readonly ev: IngestedEvent;
  readonly outputs: Record<string, RowOutputs>;
  readonly settled: Uint8Array; // 0 pending, 1 ok, 2 not ok
}

export class EventRouter {
  readonly #steps: readonly RoutedStep[];
  readonly #roots: readonly number[];
  readonly #join: EventJoin;

  constructor(pipeline: CompiledPipeline, executors: ReadonlyMap<string, StepExecutor>, join: EventJoin) {
    const index = new Map(pipeline.steps.map((s, i) => [s.id, i]));
    this.#steps = pipeline.steps.map((step): RoutedStep => {
      const executor = executors.get(step.id);
      if (executor === undefined) throw new Error(`no executor for step ${step.id}`);
      return {
        step,
        executor,
        condition: step.when === null ? null : compileExpression(step.when, `steps.${step.id}.when`, 'condition'),
        dependsOn: step.dependsOn.map((d) => index.get(d) ?? -1),
        dependents: pipeline.steps.filter((s) => s.dependsOn.includes(step.id)).map((s) => index.get(s.id) ?? -1),
      };
    });
    this.#roots = this.#steps.flatMap((s, i) => (s.dependsOn.length === 0 ? [i] : []));
    this.#join = join;
  }

  /** Starts the event's steps and resolves when its join window closes. */
  route(ev: IngestedEvent): Promise<JoinResult> {
    const closed = this.#join.open(ev.id);
    const run: EventRun = { ev, outputs: {}, settled: new Uint8Array(this.#steps.length) };
    for (const i of this.#roots) this.#start(run, i);
    return closed;
  }

  #start(run: EventRun, i: number): void {
    const routed = this.#steps[i] as RoutedStep;
    const { step } = routed;
    if (routed.dependsOn.some((d) => run.settled[d] !== 1)) {
      this.#settle(run, i, false, { status: 'skipped', reason: 'dependency produced no output' });
      return;
    }
    if (routed.condition !== null) {
      let applies: unknown;
      try {
        applies = routed.condition({ event: run.ev.event, steps: run.outputs });
      } catch (err) {
        const error = new RuleError(`steps.${step.id}.when: ${(err as Error).message}`, { cause: err });
        this.#settle(run, i, false, { status: 'error', error: error.toJSON(), model: step.model.ref });
        return;
      }
      if (applies !== true) {
        this.#settle(run, i, false, { status: 'skipped', reason: 'when is false' });
        return;
      }
    }
    let row: RowInputs;
    try {
      row = buildStepInputs(step, run.ev, run.outputs);
    } catch (err) {
      this.#settle(run, i, false, { status: 'error', error: asVerdictError(err).toJSON(), model: step.model.ref });
      return;
    }
    const started = performance.now();
    routed.executor.infer(row).then(
      (outputs) => {
        run.outputs[step.id] = outputs;
        this.#settle(run, i, true, { status: 'ok', outputs, model: step.model.ref, latencyMs: performance.now() - started });
      },
      (err: unknown) => {
        const error = asVerdictError(err);
        const report: StepReport = error.code === 'MODEL_TIMEOUT'
          ? { status: 'timeout', model: step.model.ref }
          : { status: 'error', error: error.toJSON(), model: step.model.ref };
        this.#settle(run, i, false, report);
      },
    );
  }

  #settle(run: EventRun, i: number, ok: boolean, report: StepReport): void {
    run.settled[i] = ok ? 1 : 2;
    this.#join.report(run.ev.id, (this.#steps[i] as RoutedStep).step.id, report);
    for (const d of (this.#steps[i] as RoutedStep).dependents) {
      const dep = this.#steps[d] as RoutedStep;
      if (run.settled[d] === 0 && dep.dependsOn.every((x) => run.settled[x] !== 0)) this.#start(run, d);
    }
  }
}
