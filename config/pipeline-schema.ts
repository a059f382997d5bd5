/**
 * The pipeline file's schema, as users write it, with defaults. Every object is strict: an unknown key is
 * refused with its path, since a misspelt one (`shaddow:`, `maxBatchsize:`) would otherwise be dropped
 * silently and the pipeline run without it. `compilePipeline` turns a parsed file into the fully typed
 * CompiledPipeline the engine runs; nothing past it sees optional fields.
 */
import { z } from 'zod';
import { DEFAULT_MAX_MODEL_BYTES } from '../models/model-file.js';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const identifier = z.string().regex(IDENTIFIER, 'must be an identifier (letters, digits, _)');

export const fieldSchema = z.object({
  type: z.enum(['string', 'number', 'integer', 'boolean', 'object']),
  required: z.boolean().default(true),
  min: z.number().optional(),
  max: z.number().optional(),
  enum: z.array(z.string()).optional(),
}).strict();

export const inputSchemaSchema = z.object({
  /** Field names are top-level keys of the decoded event; nested objects are addressed as `device.trusted`. */
  fields: z.record(z.string(), fieldSchema),
  /**
   * Which field carries the event id (declared, required, string or integer) and the partition key (string
   * or integer). Without `key`, a declared `key` field is used, or else the record's key, or else the id.
   */
  id: z.string().default('id'),
  key: z.string().optional(),
}).strict();

/**
 * One feature column: a numeric event field, optionally transformed, a one-hot of a categorical field, or a
 * comparison of two fields; or a per-key state value (`state`: a name declared under `state.aggregates`),
 * optionally transformed, with `missing` (default 0) as the column's value when the state value is null
 * (an empty window's mean, a key's first `timeSince`), or compared with an event field.
 */
export const featureSchema = z.union([
  z.object({
    field: z.string(),
    transform: z.enum(['identity', 'log1p', 'bool']).default('identity'),
  }).strict(),
  z.object({ field: z.string(), oneHot: z.array(z.string()).min(1) }).strict(),
  z.object({ field: z.string(), equalsField: z.string() }).strict(),
  z.object({
    state: identifier,
    transform: z.enum(['identity', 'log1p', 'bool']).default('identity'),
    missing: z.number().finite().default(0),
  }).strict(),
  z.object({ state: identifier, equalsField: z.string() }).strict(),
]);

/**
 * The deepest nesting `input.limits.maxDepth` may allow: every stage that walks an event (the MessagePack
 * normaliser, the JSON number check, the programmatic API's check) recurses once per level, and 256 keeps
 * that far from the stack's end. No real event comes near it.
 */
export const MAX_NESTING_DEPTH = 256;

/**
 * What one record may hold (`input.limits`), enforced at ingestion before the work each bounds
 * (pipeline/ingest/limits.ts; README "Limits"). A record over any of them is dead-lettered byte for byte
 * with the limit's own code.
 * - `maxRecordBytes` (1,048,576 = 1 MiB, Kafka's default `message.max.bytes`): the record's key, value and
 *   every header's name and value, in bytes, checked before anything is decoded (INPUT_RECORD_TOO_LARGE).
 * - `maxDepth` (32, at most 256): levels of objects and arrays, the event itself being level 1
 *   (INPUT_NESTING_TOO_DEEP).
 * - `maxFields` (1,000): every object's keys and every array's items, counted together over the whole event
 *   (INPUT_TOO_MANY_FIELDS).
 * - `maxStringLength` (65,536): UTF-16 code units of any string, a value or a key (INPUT_STRING_TOO_LONG).
 */
export const inputLimitsSchema = z.object({
  maxRecordBytes: z.number().int().positive().default(1_048_576),
  maxDepth: z.number().int().positive().max(MAX_NESTING_DEPTH).default(32),
  maxFields: z.number().int().positive().default(1_000),
  maxStringLength: z.number().int().positive().default(65_536),
}).strict();
export type InputLimits = Readonly<z.output<typeof inputLimitsSchema>>;
/** Every input limit at its default. */
export const DEFAULT_INPUT_LIMITS: InputLimits = Object.freeze(inputLimitsSchema.parse({}));

/** `<whole number><unit>`, unit ms, s, m, h or d: `90s`, `1h`, `7d` (config/duration.ts reads it). */
export const durationSchema = z.string().regex(/^[0-9]+(ms|s|m|h|d)$/, 'must be a duration: a whole number and a unit (ms, s, m, h, d), e.g. 90s, 1h, 7d');

const seesSchema = z.enum(['before', 'after']);
/** What every windowed aggregate takes: its window, its bucket (default window/60, see config/compile-state.ts), and `sees`. */
const windowed = { window: durationSchema, bucket: durationSchema.optional(), sees: seesSchema.optional() };

/** One aggregate of `state.aggregates` (pipeline/state/types.ts `CompiledAggregate` gives each op's meaning). */
export const aggregateSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('count'), field: z.string().min(1).optional(), ...windowed }).strict(),
  z.object({ op: z.enum(['sum', 'mean', 'min', 'max']), field: z.string().min(1), ...windowed }).strict(),
  z.object({ op: z.literal('distinct'), field: z.string().min(1), ...windowed, maxDistinct: z.number().int().positive().default(1000) }).strict(),
  z.object({ op: z.literal('last'), field: z.string().min(1), sees: seesSchema.optional() }).strict(),
  z.object({ op: z.literal('timeSince') }).strict(),
]);

/**
 * Per-key state: named aggregates over event-time windows, keyed by the record key (README "Per-key
 * state"). Compiled, with every default and check, by config/compile-state.ts.
 */
export const stateSchema = z.object({
  /** The event's time: a numeric field (dotted path allowed), epoch milliseconds (default) or seconds. */
  eventTime: z.object({ field: z.string().min(1), unit: z.enum(['ms', 's']).default('ms') }).strict(),
  /** How far behind its key's latest event time an event may be and still be applied. */
  allowedLateness: durationSchema.default('1m'),
  /** A key idle this long starts afresh; default (and least) the longest window. */
  idleAfter: durationSchema.optional(),
  /**
   * How far ahead of its record's timestamp (the producer's clock) an event time may be: further is refused
   * (STATE_EVENT_TIME_INVALID), since one far-future event would make every later event of its key late.
   */
  maxAhead: durationSchema.default('7d'),
  maxKeysPerPartition: z.number().int().positive().default(100_000),
  /** Whether an event sees each aggregate before or after itself is applied, unless the aggregate says. */
  sees: seesSchema.default('before'),
  /** Default: `<group id>-<pipeline>-changelog`, derived by the daemon. */
  changelogTopic: z.string().min(1).optional(),
  /** Name → aggregate; a name is an identifier (CEL reads it as `state.<name>`). At least one. */
  aggregates: z.record(z.string(), aggregateSchema).superRefine((aggregates, ctx) => {
    const names = Object.keys(aggregates);
    if (names.length === 0) ctx.addIssue({ code: 'custom', message: 'declare at least one aggregate' });
    // Checked here rather than as the record's key schema, whose error would not say what a name must be.
    for (const name of names) {
      if (!IDENTIFIER.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'an aggregate name must be an identifier (letters, digits, _; not starting with a digit)' });
    }
  }),
}).strict();

export const stepSchema = z.object({
  id: identifier,
  model: z.string().min(1),
  /** Model input name → a reference (`features.dense`, `event.amount`, `steps.gbt.fraud_probability`) or a list to concatenate. */
  inputs: z.record(z.string(), z.union([z.string(), z.array(z.string()).min(1)])),
  when: z.string().optional(),
  timeoutMs: z.number().int().positive().optional(),
  /**
   * A candidate version that decides for `percent` % of event keys instead of `model` (0 < percent <= 100),
   * sticky per key: the share is a hash of the decision key (pipeline/route/key-split.ts).
   */
  canary: z.object({
    model: z.string().min(1),
    percent: z.number().gt(0, 'must be above 0').lte(100, 'must be at most 100'),
  }).strict().optional(),
  /**
   * A candidate version run on the same rows as the step, whose output never enters the decision: the rules
   * are evaluated again with its output in place of the step's, and the two decisions compared in metrics.
   */
  shadow: z.string().min(1).optional(),
}).strict();

export const ruleSchema = z.object({
  when: z.string().min(1),
  action: z.string().min(1),
  reason: z.string().min(1),
}).strict();

export const batchingSchema = z.object({
  maxBatchSize: z.number().int().positive().optional(),
  maxDelayMs: z.number().nonnegative().optional(),
  mailboxCapacity: z.number().int().positive().optional(),
}).strict();

/**
 * A model actor's batch policy, complete: the one place its defaults live. Rows per batch (64), the longest
 * a row waits for its batch to fill (2 ms), rows queued before callers are refused (8,192), and batches in
 * flight at once per actor (2). Pipeline files set the first three (`models.batching`, per-model overrides);
 * the compiler and the programmatic API parse through this.
 */
export const batchPolicySchema = z.object({
  maxBatchSize: z.number().int().positive().default(64),
  maxDelayMs: z.number().nonnegative().finite().default(2),
  mailboxCapacity: z.number().int().positive().default(8192),
  maxInflightBatches: z.number().int().positive().default(2),
});
export type BatchPolicyOptions = z.input<typeof batchPolicySchema>;

/**
 * A model version's circuit breaker (actors/circuit-breaker.ts), complete: the one place its defaults live.
 * It opens after `failureThreshold` consecutive failed batches or step timeouts of the version (5), and lets
 * one probe batch through `coolDownMs` after opening (5,000 ms). Pipeline files set it under
 * `models.circuitBreaker`; the programmatic API and the model actor parse through this.
 */
export const circuitBreakerSchema = z.object({
  failureThreshold: z.number().int().positive().default(5),
  coolDownMs: z.number().nonnegative().finite().default(5000),
}).strict();
export type CircuitBreakerPolicy = z.output<typeof circuitBreakerSchema>;

/**
 * Bounds on the pipeline itself (README "Limits"), checked when it compiles: over any of them the file is
 * refused with its own code and the config path. `maxSteps` (32): steps (CONFIG_TOO_MANY_STEPS).
 * `maxFeatures` (4,096): feature columns, all feature sets together (CONFIG_TOO_MANY_FEATURES). `maxRules`
 * (256): decision rules and fallback rules together (CONFIG_TOO_MANY_RULES). `maxExpressionLength` (4,096
 * characters): one CEL expression (CONFIG_RULE_TOO_LARGE). `maxEvaluationCost` (10,000): one CEL
 * evaluation's cost in AST node evaluations, a comprehension's body counted once per item (config/cel-cost.ts):
 * an expression whose bound over the largest input the input limits allow is higher is refused at compile
 * time (CONFIG_RULE_TOO_LARGE), and an evaluation that spends more is cut off (RULE_COST_EXCEEDED).
 */
export const pipelineLimitsSchema = z.object({
  maxSteps: z.number().int().positive().default(32),
  maxFeatures: z.number().int().positive().default(4096),
  maxRules: z.number().int().positive().default(256),
  maxExpressionLength: z.number().int().positive().default(4096),
  maxEvaluationCost: z.number().int().positive().default(10_000),
}).strict();
export type PipelineLimits = z.output<typeof pipelineLimitsSchema>;

/** Decision headers a pipeline may ask for (`output.headers`). */
export const OPTIONAL_DECISION_HEADERS = ['pipeline', 'models'] as const;
export type OptionalDecisionHeader = (typeof OPTIONAL_DECISION_HEADERS)[number];

/** Where work runs (see config/placement.ts); every field defaulted here, so `{}` is the default placement. */
export const runtimeSchema = z.object({
  /** Worker threads; 0 runs everything on the main thread. Default: cores - 1, at least 1. */
  workers: z.number().int().nonnegative().optional(),
  /**
   * What the workers run for the stream. `blocks`: whole blocks (ingest, models, join, decisions,
   * encoding), each worker with its own model actors, so the main thread keeps only transport, ordering
   * and commits. `inference`: only model batches, everything else on the main thread.
   */
  mode: z.enum(['blocks', 'inference']).default('blocks'),
  /** onnxruntime intra-op threads per session. */
  intraOpThreads: z.number().int().positive().default(1),
}).strict();

export const pipelineFileSchema = z.object({
  pipeline: identifier.or(z.string().regex(/^[A-Za-z0-9_.-]+$/)),
  description: z.string().default(''),
  schemas: z.record(z.string(), inputSchemaSchema),
  input: z.object({
    topic: z.string().default('transactions'),
    schema: z.string(),
    format: z.enum(['json', 'msgpack', 'auto']).default('auto'),
    features: z.record(identifier, z.array(featureSchema).min(1)),
    /** What one record may hold: see `inputLimitsSchema`. */
    limits: inputLimitsSchema.prefault({}),
  }).strict(),
  steps: z.array(stepSchema).min(1),
  join: z.object({
    mode: z.enum(['all', 'any', 'partial']).default('partial'),
    deadlineMs: z.number().positive().default(50),
  }).strict().prefault({}),
  decision: z.object({
    /** CEL for the decision's score; when absent the score is the highest-priority model probability found. */
    score: z.string().optional(),
    rules: z.array(ruleSchema).default([]),
    default: z.string().default('approve'),
    /**
     * A rule that fails to evaluate for an event (a missing key, an int division by zero): `skip` counts it as
     * not fired, so a later rule or the default decides; `incomplete` hands the event to `onIncomplete`, as if
     * a step had failed. Either way it is counted per rule and named in the decision's reasons.
     */
    onRuleError: z.enum(['skip', 'incomplete']).default('skip'),
    onIncomplete: z.discriminatedUnion('policy', [
      z.object({ policy: z.literal('fail-open') }).strict(),
      z.object({ policy: z.literal('fail-closed'), action: z.string().default('review') }).strict(),
      z.object({ policy: z.literal('fallback'), rules: z.array(ruleSchema).min(1), default: z.string() }).strict(),
    ]).default({ policy: 'fail-open' }),
  }).strict(),
  output: z.object({
    topic: z.string().default('decisions'),
    deadLetter: z.string().default('verdict.dlq'),
    /**
     * Headers a decision carries besides `verdict-event-id` (and `verdict-trace-id` when its input had a trace
     * id): `pipeline` and `models` repeat what the value says, for consumers that route without parsing it.
     * Off by default: with kafkajs every header is a separate encoder and allocation, and these two more
     * than doubled the producer's CPU per decision (bench/micro/kafka-encode.ts).
     */
    headers: z.array(z.enum(OPTIONAL_DECISION_HEADERS)).default([]),
    /**
     * A topic for both decisions side by side, one record per event a step's shadow was compared on
     * (runtime/shadow-topic.ts gives the record's shape). Best effort: not committed with the offsets, may
     * drop under backpressure, may repeat after a restart. Absent (the default): metrics only. Must differ
     * from `topic` and `deadLetter`.
     */
    shadowTopic: z.string().min(1).optional(),
  }).strict().prefault({}),
  models: z.object({
    registry: z.string().default('models/registry'),
    batching: batchingSchema.default({}),
    /** Per-model overrides, by model name. */
    overrides: z.record(z.string(), batchingSchema).default({}),
    /** When a model version stops getting work: see `circuitBreakerSchema`. */
    circuitBreaker: circuitBreakerSchema.prefault({}),
    /**
     * How often (ms) a running engine re-reads the aliases its steps use and swaps to a version that moved
     * (runtime/live-models.ts). Default 1000; 0 fixes the versions resolved at start-up.
     */
    aliasPollMs: z.number().int().nonnegative().default(1000),
    /**
     * The largest model file (bytes) the pipeline loads, checked with `stat` before any byte is read, at
     * resolve and in every thread that loads a session (MODEL_FILE_TOO_LARGE). Default 1 GiB: ONNX's
     * protobuf cap is 2 GiB.
     */
    maxModelBytes: z.number().int().positive().default(DEFAULT_MAX_MODEL_BYTES),
  }).strict().prefault({}),
  runtime: runtimeSchema.prefault({}),
  /** Per-key state (see `stateSchema`); absent: the pipeline keeps none. */
  state: stateSchema.optional(),
  /** Bounds on the pipeline's size and its CEL (see `pipelineLimitsSchema`). */
  limits: pipelineLimitsSchema.prefault({}),
}).strict();

/** A pipeline file validated and defaulted by `pipelineFileSchema` (the README's "The pipeline file" section describes it). */
export type PipelineFile = z.output<typeof pipelineFileSchema>;
export type FieldSpec = z.output<typeof fieldSchema>;
export type InputSchemaSpec = z.output<typeof inputSchemaSchema>;
export type FeatureSpec = z.output<typeof featureSchema>;
export type StepSpec = z.output<typeof stepSchema>;
export type RuleSpec = z.output<typeof ruleSchema>;
export type StateSpec = z.output<typeof stateSchema>;
export type AggregateSpec = z.output<typeof aggregateSchema>;
