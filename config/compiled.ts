/** The compiled pipeline: every option resolved, defaulted and cross-checked. Nothing downstream sees optional fields. */
import type { ResolvedModel, TensorSpec } from '../models/types.js';
import type { CompiledState } from './compiled-state.js';
import type { Placement } from './placement.js';
import type { CircuitBreakerPolicy, FeatureSpec, InputLimits, InputSchemaSpec, OptionalDecisionHeader, PipelineLimits, RuleSpec } from './pipeline-schema.js';

export type JoinMode = 'all' | 'any' | 'partial';

/** Where one slice of a model input comes from. */
export type InputSource =
  | { readonly kind: 'feature'; readonly set: string; readonly width: number }
  | { readonly kind: 'event'; readonly path: readonly string[]; readonly width: 1 }
  | { readonly kind: 'step'; readonly step: string; readonly output: string; readonly width: number };

export interface CompiledInput {
  readonly name: string;
  readonly spec: TensorSpec;
  readonly width: number;
  readonly sources: readonly InputSource[];
}

/** A step's batch policy, complete (defaults in `batchPolicySchema`). */
export interface Batching {
  readonly maxBatchSize: number;
  readonly maxDelayMs: number;
  readonly mailboxCapacity: number;
  readonly maxInflightBatches: number;
}

export interface CompiledStep {
  readonly id: string;
  readonly index: number;
  readonly modelId: string;
  readonly model: ResolvedModel;
  readonly inputs: readonly CompiledInput[];
  /** The CEL source of the step's condition, or null when the step always applies. */
  readonly when: string | null;
  /** Ids of the steps this one waits for: referenced by its inputs or its `when`. */
  readonly dependsOn: readonly string[];
  readonly timeoutMs: number;
  readonly batching: Batching;
  /** The circuit breaker of the step's model actor (`models.circuitBreaker`, defaults in the schema). */
  readonly circuitBreaker: CircuitBreakerPolicy;
  /**
   * A candidate that decides for `percent` % of event keys (0 < percent <= 100), or null. `modelId` is the
   * id as configured (an alias is resolved again when it moves), `model` the version it resolved to.
   */
  readonly canary: { readonly modelId: string; readonly model: ResolvedModel; readonly percent: number } | null;
  /** A candidate run beside the step on the same rows, never deciding; or null. `modelId` as configured. */
  readonly shadow: { readonly modelId: string; readonly model: ResolvedModel } | null;
}

export interface CompiledDecision {
  readonly score: string | null;
  readonly rules: readonly RuleSpec[];
  readonly default: string;
  /** What a rule that fails to evaluate does (pipeline-schema documents both). */
  readonly onRuleError: 'skip' | 'incomplete';
  readonly onIncomplete:
    | { readonly policy: 'fail-open' }
    | { readonly policy: 'fail-closed'; readonly action: string }
    | { readonly policy: 'fallback'; readonly rules: readonly RuleSpec[]; readonly default: string };
}

/** A pipeline ready to run (`compilePipeline`): plain data, so it can be sent to block workers. */
export interface CompiledPipeline {
  readonly name: string;
  readonly description: string;
  /** The input topic, its wire format, the event schema, the feature sets and what one record may hold. */
  readonly input: {
    readonly topic: string;
    readonly format: 'json' | 'msgpack' | 'auto';
    readonly schemaName: string;
    readonly schema: InputSchemaSpec;
    readonly features: Readonly<Record<string, readonly FeatureSpec[]>>;
    /** `input.limits`, every one defaulted (`inputLimitsSchema`). */
    readonly limits: InputLimits;
  };
  /** In dependency order: every step comes after the steps it depends on. */
  readonly steps: readonly CompiledStep[];
  /** How the step outputs of one event are joined: the join mode, and the deadline (ms) after which the join closes. */
  readonly join: { readonly mode: JoinMode; readonly deadlineMs: number };
  /** The score, the rules, the default action and the incomplete policy. */
  readonly decision: CompiledDecision;
  /** The decisions topic, the dead-letter topic, the optional decision headers, and the shadow topic. */
  readonly output: {
    readonly topic: string;
    readonly deadLetter: string;
    /** Optional decision headers (see the pipeline schema). */
    readonly headers: readonly OptionalDecisionHeader[];
    /** `output.shadowTopic`, or null: both decisions of each compared event (runtime/shadow-topic.ts). */
    readonly shadowTopic: string | null;
  };
  /** The model registry directory, absolute. */
  readonly registryRoot: string;
  /** `models.maxModelBytes`: the largest model file (bytes) loaded, at resolve and in every thread. */
  readonly maxModelBytes: number;
  /** `limits`, every one defaulted (`pipelineLimitsSchema`): the pipeline's size and its CEL's bounds. */
  readonly limits: PipelineLimits;
  /** `models.aliasPollMs`: how often (ms) a running engine re-reads its steps' aliases; 0 = versions fixed at start-up. */
  readonly aliasPollMs: number;
  /** Where the work runs, decided here once (config/placement.ts). */
  readonly placement: Placement;
  /** The per-key state (`state` in the file), or null when the pipeline declares none. */
  readonly state: CompiledState | null;
}
