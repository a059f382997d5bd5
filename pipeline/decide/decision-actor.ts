/**
 * The decision actor: turns a closed join into a decision with CEL business rules. Decisions are pure,
 * synchronous CPU work, so the actor is a status plus a handler; there is nothing to queue.
 *
 * Incomplete joins follow the configured policy: fail-open applies the normal rules to what arrived,
 * fail-closed returns a fixed action, fallback applies a separate rule set. A rule that fails to evaluate
 * is named in the reasons and counted per rule; with `onRuleError: incomplete` it also hands the event to
 * that policy, since the rules could not say what they were written to say.
 */
import type { CompiledDecision } from '../../config/compiled.js';
import { preciseScheduler, roundToMicros, type Clock } from '../../core/clock.js';
import type { Logger } from '../../core/log.js';
import { componentLogger, silentLogger } from '../../core/log.js';
import { RuleError } from '../../core/errors.js';
import type { Metrics } from '../../core/metrics.js';
import type { RowOutputs } from '../../models/types.js';
import { failedSteps } from '../join/completeness.js';
import type { JoinResult, StepStatus } from '../join/types.js';
import type { StateValues } from '../state/types.js';
import { Lifecycle, type LifecycleState } from '../../core/lifecycle.js';
import {
  DEFAULT_CEL_LIMITS, compileExpression, compileRules, errorSummary, evaluateRules, ruleErrorCode,
  type CelContext, type CelLimits, type CompiledRule, type RuleVerdict,
} from '../../config/rules.js';

/** A decision's reason for each rule that failed to evaluate: `rule_error:decision.rules[2]`. */
export const RULE_ERROR_REASON = 'rule_error:';
const SCORE = 'decision.score';
const NO_STATE: StateValues = Object.freeze({});

export interface DecisionInput {
  readonly event: Readonly<Record<string, unknown>>;
  readonly eventId: string;
  readonly key: string;
  readonly join: JoinResult;
  /** The per-key state values the event saw (CEL's `state`); absent or empty when the pipeline keeps none. */
  readonly state?: StateValues;
  /** Stage latencies measured upstream, in ms. */
  readonly timings?: Readonly<Record<string, number>>;
}

/** What decided: the rules on a complete join, or the pipeline's `decision.onIncomplete` policy. */
export type DecisionPolicy = 'rules' | 'fail-open' | 'fail-closed' | 'fallback';

/**
 * One event's decision: the JSON value of the record written to the output topic (pipeline/encode-outcome.ts).
 * The rules, the score expression and the incomplete policy come from the pipeline file's `decision` block.
 */
export interface Decision {
  /** The event's id, from the input contract's id field (config/input-contract.ts). */
  readonly eventId: string;
  /** The event's key: the schema's key field when it has one, else the input record's key, else the id (config/input-contract.ts). */
  readonly key: string;
  /** The pipeline's name. */
  readonly pipeline: string;
  /** The first matching rule's action, else `decision.default` (or the incomplete policy's action). */
  readonly action: string;
  /**
   * `decision.score` evaluated, or without one the first `probability`/`*_probability` output of the first
   * ok step; null when there is none or the expression does not give a finite number.
   */
  readonly score: number | null;
  /** The matched rules' reasons, in rule order; plus `incomplete:<steps>` and `rule_error:<rule id>` entries. */
  readonly reasons: readonly string[];
  /** The model version each step ran, by step id. */
  readonly models: Readonly<Record<string, string>>;
  /** Each ok step's outputs (output name → value), by step id. */
  readonly outputs: Readonly<Record<string, RowOutputs>>;
  /**
   * The per-key state values the event saw, every declared aggregate by name (null where there was nothing
   * to report), in declaration order: what the features and rules read. Absent when the pipeline keeps no state.
   */
  readonly state?: StateValues;
  /** Each step's status when the join closed, by step id: ok, skipped, error or timeout. */
  readonly completeness: Readonly<Record<string, StepStatus>>;
  /** Whether the join was complete for the pipeline's join mode. */
  readonly complete: boolean;
  /** What decided: `rules` on a complete join, else the incomplete policy that applied. */
  readonly policy: DecisionPolicy;
  /** The rules (and the score) that failed to evaluate, each `<rule path>: <message>`; absent when none. */
  readonly ruleErrors?: readonly string[];
  /** Stage latencies in ms, rounded to microseconds (`roundToMicros`): `ingest`, `models` (the join), `decision`. */
  readonly latencyMs: Readonly<Record<string, number>>;
}

export interface DecisionActorOptions {
  readonly pipeline: string;
  readonly decision: CompiledDecision;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
  /** Times the decision stage. Default: the production clock. */
  readonly clock?: Pick<Clock, 'now'>;
  /** The CEL bounds (`celLimitsOf(pipeline.limits)`); default `DEFAULT_CEL_LIMITS`. */
  readonly limits?: CelLimits;
}

export class DecisionActor {
  readonly #pipeline: string;
  readonly #rules: readonly CompiledRule[];
  readonly #default: string;
  readonly #score: ((c: CelContext) => unknown) | null;
  readonly #incomplete: CompiledDecision['onIncomplete'];
  readonly #fallback: readonly CompiledRule[];
  readonly #lifecycle = new Lifecycle();
  readonly #metrics: Metrics | undefined;
  /** Counter children by action: the set of actions is small and fixed by the config. */
  readonly #decisionCounters = new Map<string, { inc(): void }>();
  /** Counter children by rule id: one per rule of the config at most. */
  readonly #ruleErrorCounters = new Map<string, { inc(): void }>();
  readonly #onRuleError: CompiledDecision['onRuleError'];
  readonly #log: Logger;
  readonly #clock: Pick<Clock, 'now'>;

  constructor(options: DecisionActorOptions) {
    const { decision } = options;
    this.#pipeline = options.pipeline;
    const limits = options.limits ?? DEFAULT_CEL_LIMITS;
    this.#rules = compileRules(decision.rules, 'decision.rules', limits);
    this.#default = decision.default;
    this.#score = decision.score === null ? null : compileExpression(decision.score, 'decision.score', 'number', limits);
    this.#incomplete = decision.onIncomplete;
    this.#onRuleError = decision.onRuleError;
    this.#fallback = decision.onIncomplete.policy === 'fallback' ? compileRules(decision.onIncomplete.rules, 'decision.onIncomplete.rules', limits) : [];
    this.#metrics = options.metrics;
    this.#log = componentLogger(options.logger ?? silentLogger, 'decision_actor', { pipeline: options.pipeline });
    this.#clock = options.clock ?? preciseScheduler;
    this.#lifecycle.moveTo('running');
  }

  get status(): LifecycleState {
    return this.#lifecycle.state;
  }

  /** The event's decision, counted in `verdict_decisions_total` (and its failed rules in the rule-error metrics). */
  decide(input: DecisionInput): Decision {
    return this.#decide(input, true);
  }

  /**
   * What the rules would decide for `input`, exactly as `decide` does, but counted nowhere and not logged:
   * for decisions that are not made, such as a shadow's (pipeline/decide/shadow-decisions.ts), so the
   * primary's decision and rule-error metrics keep counting only what was decided.
   */
  evaluate(input: DecisionInput): Decision {
    return this.#decide(input, false);
  }

  #decide(input: DecisionInput, counted: boolean): Decision {
    const started = this.#clock.now();
    const { join } = input;
    const state = input.state ?? NO_STATE;
    const context: CelContext = { event: input.event, steps: join.outputs, completeness: join.completeness, state };
    const incomplete = this.#incomplete;
    let policy: DecisionPolicy;
    let action: string;
    let reasons: string[];
    const errors: string[] = [];
    const failed: string[] = [];
    const codes: string[] = [];
    // The normal rules run unless the join is incomplete and the policy replaces them.
    let rules: RuleVerdict | null = null;
    if (join.complete || incomplete.policy === 'fail-open') {
      rules = evaluateRules(this.#rules, context);
      errors.push(...rules.errors);
      failed.push(...rules.failed);
      codes.push(...rules.codes);
    }
    // onRuleError `incomplete`: a failed rule means the rules could not decide, as a failed step would.
    const decidedByRules = rules !== null && (rules.failed.length === 0 || this.#onRuleError === 'skip');
    if (rules !== null && (decidedByRules || incomplete.policy === 'fail-open')) {
      policy = join.complete && decidedByRules ? 'rules' : 'fail-open';
      action = rules.action ?? this.#default;
      reasons = rules.reasons;
    } else if (incomplete.policy === 'fallback') {
      policy = 'fallback';
      const verdict = evaluateRules(this.#fallback, context);
      action = verdict.action ?? incomplete.default;
      reasons = verdict.reasons;
      errors.push(...verdict.errors);
      failed.push(...verdict.failed);
      codes.push(...verdict.codes);
    } else {
      // fail-closed (fail-open never gets here: its rules decide on whatever arrived).
      policy = 'fail-closed';
      action = incomplete.policy === 'fail-closed' ? incomplete.action : this.#default;
      // Names the failed steps; when only a rule failed, its rule_error reason below says why.
      const steps = failedSteps(join.completeness);
      reasons = steps.length > 0 || failed.length === 0 ? [`incomplete:${steps.join(',')}`] : [];
    }
    for (const id of failed) reasons.push(`${RULE_ERROR_REASON}${id}`);
    const score = this.#scoreOf(context, join.outputs, errors, failed, codes);
    if (counted) {
      if (errors.length > 0) {
        // By code: a cost cut-off (RULE_COST_EXCEEDED) is told apart from a rule that failed on its data.
        for (const code of codes) this.#metrics?.errors.inc({ component: 'decision_actor', code });
        for (const id of failed) this.#countRuleError(id);
        this.#log.debug({ eventId: input.eventId, errors }, 'rule evaluation failed');
      }
      this.#countDecision(action);
    }
    return {
      eventId: input.eventId,
      key: input.key,
      pipeline: this.#pipeline,
      action,
      score,
      reasons,
      models: join.models,
      outputs: join.outputs,
      ...(hasValues(state) ? { state } : {}),
      completeness: join.completeness,
      complete: join.complete,
      policy,
      ...(errors.length > 0 ? { ruleErrors: errors } : {}),
      latencyMs: { ...input.timings, decision: roundToMicros(this.#clock.now() - started) },
    };
  }

  decideBatch(inputs: readonly DecisionInput[]): Decision[] {
    return inputs.map((i) => this.decide(i));
  }

  #countDecision(action: string): void {
    this.#increment(this.#decisionCounters, action, (m) => m.decisions.labels({ pipeline: this.#pipeline, action }));
  }

  #countRuleError(rule: string): void {
    this.#increment(this.#ruleErrorCounters, rule, (m) => m.ruleErrors.labels({ pipeline: this.#pipeline, rule }));
  }

  /** Label children resolved once per value: a labelled `inc` hashes its label set on every call. */
  #increment(cache: Map<string, { inc(): void }>, value: string, child: (metrics: Metrics) => { inc(): void }): void {
    const metrics = this.#metrics;
    if (metrics === undefined) return;
    let counter = cache.get(value);
    if (counter === undefined) cache.set(value, (counter = child(metrics)));
    counter.inc();
  }

  /** The score; a failing score expression is counted like a rule (`decision.score`) but never changes the action. */
  #scoreOf(context: CelContext, outputs: JoinResult['outputs'], errors: string[], failed: string[], codes: string[]): number | null {
    if (this.#score === null) return defaultScore(outputs);
    try {
      const value = this.#score(context);
      const score = typeof value === 'bigint' ? Number(value) : value;
      // A NaN or ±Infinity (a division by zero in the expression) is not a score: JSON would write it as null
      // without saying why. It is reported like any failed evaluation, and the score is null.
      if (typeof score === 'number' && Number.isFinite(score)) return score;
      errors.push(typeof score === 'number'
        ? `${SCORE}: evaluated to ${score}, not a finite number`
        : `${SCORE}: evaluated to ${typeof value}, not a number`);
    } catch (err) {
      errors.push(`${SCORE}: ${errorSummary(err)}`);
      failed.push(SCORE);
      codes.push(ruleErrorCode(err));
      return null;
    }
    failed.push(SCORE);
    codes.push(RuleError.code);
    return null;
  }
}

/** True when the pipeline keeps state: a `state` section declares at least one aggregate, so its events see one value or more. */
function hasValues(state: StateValues): boolean {
  for (const _ in state) return true;
  return false;
}

/**
 * The score when the config gives no expression (as pipeline-schema documents): the first probability
 * output (`probability` or `*_probability`) of the first ok step, in pipeline step order, which is the
 * order the join builds its outputs in. Null when no step produced one.
 */
function defaultScore(outputs: JoinResult['outputs']): number | null {
  for (const step in outputs) {
    const row = outputs[step] as RowOutputs;
    for (const name in row) {
      const value = row[name];
      if (typeof value === 'number' && (name === 'probability' || name.endsWith('_probability'))) return value;
    }
  }
  return null;
}
