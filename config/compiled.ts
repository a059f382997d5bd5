/** The compiled pipeline: every option resolved, defaulted and cross-checked. Nothing downstream sees optional fields. */
import type { ResolvedModel, TensorSpec } from '../models/types.js';
import type { Placement } from './placement.js';
import type { CircuitBreakerPolicy, FeatureSpec, InputSchemaSpec, OptionalDecisionHeader, RuleSpec } from './pipeline-schema.js';

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
  /** The input topic, its wire format, the event schema and the feature sets. */
  readonly input: {
    readonly topic: string;
    readonly format: 'json' | 'msgpack' | 'auto';
    readonly schemaName: string;
    readonly schema: InputSchemaSpec;
    readonly features: Readonly<Record<string, readonly FeatureSpec[]>>;
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
  /** `models.aliasPollMs`: how often (ms) a running engine re-reads its steps' aliases; 0 = versions fixed at start-up. */
  readonly aliasPollMs: number;
  /** Where the work runs, decided here once (config/placement.ts). */
  readonly placement: Placement;
  /** The per-key state (`state` in the file), or null when the pipeline declares none. */
  readonly state: CompiledState | null;
}

// ---- per-key state (pipeline/state/types.ts re-exports these with the rest of state's shapes) ----------

/** Whether an aggregate is read before the event is applied to it, or after. */
export type StateSees = 'before' | 'after';

interface WindowedAggregate {
  readonly name: string;
  /** Window length, ms (a whole number of buckets). */
  readonly windowMs: number;
  /** Bucket length, ms; the window keeps `windowMs / bucketMs` buckets. */
  readonly bucketMs: number;
  readonly sees: StateSees;
}

/** A declared aggregate, compiled: every default applied. `field` is a (dotted) event path. */
export type CompiledAggregate =
  /** Events applied in the window; with `field`, only those where the field is present (not null). */
  | (WindowedAggregate & { readonly op: 'count'; readonly field: string | null })
  /** Of a numeric field's finite values in the window; an event without one is not counted. */
  | (WindowedAggregate & { readonly op: 'sum' | 'mean' | 'min' | 'max'; readonly field: string })
  /** Distinct values of a field in the window, exact while at most `maxDistinct` are retained. */
  | (WindowedAggregate & { readonly op: 'distinct'; readonly field: string; readonly maxDistinct: number })
  /** The field's value on the applied event with the greatest event time (ties: the later offset). */
  | { readonly name: string; readonly op: 'last'; readonly field: string; readonly sees: StateSees }
  /** Seconds from the key's previous applied event (its greatest event time before this one) to this event; null for a key's first. */
  | { readonly name: string; readonly op: 'timeSince' };

export type AggregateOp = CompiledAggregate['op'];

/** The pipeline file's `state` section, compiled (config/compile-state.ts). */
export interface CompiledState {
  /** Where an event's time comes from: a numeric field, epoch milliseconds or seconds. */
  readonly eventTime: { readonly field: string; readonly unit: 'ms' | 's' };
  /** An event older than its key's latest event time minus this (ms) is late: not applied, counted. */
  readonly allowedLatenessMs: number;
  /** A key whose latest event time is this much (ms) behind the event being applied, or behind the partition's latest, starts afresh (evicted). At least the longest window. */
  readonly idleAfterMs: number;
  /** Keys kept per partition; past it the least recently applied key is evicted (and counted). */
  readonly maxKeysPerPartition: number;
  /** The changelog topic, or null: the daemon derives `<group id>-<pipeline>-changelog` (Kafka Streams' naming). */
  readonly changelogTopic: string | null;
  /** In declaration order. */
  readonly aggregates: readonly CompiledAggregate[];
  /**
   * sha256 (hex) of everything above that gives stored state its meaning (event time, lateness, idle
   * bound, the aggregates), not the key bound or topic: a changelog written under another definition is
   * not restored.
   */
  readonly fingerprint: string;
}
