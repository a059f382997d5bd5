/**
 * Verdict's public API. Everything a user may import is named here; nothing else is public.
 *
 *   const verdict = new Verdict({ registry: './registry' });                // any registry directory
 *   await verdict.executeModel('fraud_gbt@production', { features });        // one row → its outputs
 *   await verdict.executeModel('fraud_gbt', [{ features: a }, { features: b }]); // a batch → { outputs, errors }
 *   await verdict.executePipeline('card-risk', transaction);                  // the sample pipeline
 *   await verdict.executePipeline(['fraud_gbt@canary', 'txn_autoencoder'], transaction);
 *   await verdict.close();
 *
 *   const daemon = await createDaemon('verdict.yaml');                       // or a config object, see createDaemon
 *   await daemon.start(); … const report = await daemon.stop();             // { drained, abandoned }
 *
 * `executeModel` and `executePipeline` are also exported as functions over a lazily created default
 * instance (`new Verdict()`: the sample pipeline and its registry), closed by `closeDefault()`. Every error
 * is a `VerdictError` with a stable `code` (see core/errors.ts and the README's error table).
 */
import { Verdict } from './runtime/verdict.js';
import type { PipelineResult } from './runtime/engine.js';
import type { ExecuteModelOptions } from './runtime/verdict.js';
import type { RowInputs, RowOutputs, RowResults } from './models/types.js';

export { Verdict, DEFAULT_MODEL_TIMEOUT_MS, type VerdictOptions, type ExecuteModelOptions } from './runtime/verdict.js';
export { Engine, type EngineOptions, type PipelineResult } from './runtime/engine.js';
export { ActorCache } from './runtime/actor-cache.js';
export type { LiveModels, ModelsStatus, RoleStatus, Refusal, SwapResult, ModelRole, ModelEvent, FollowMode } from './runtime/live-models.js';
export type { Decision } from './pipeline/decide/decision-actor.js';
export type { StateRead, StateValue, StateValues } from './pipeline/state/types.js';
export type { Outcome, DecisionOutcome, DeadLetterOutcome } from './pipeline/outcome.js';
export { ModelRegistry } from './models/registry.js';
export type {
  ModelManifest, ResolvedModel, RowInputs, RowOutputs, RowResults, RowValues, InputScalar, OutputScalar, TensorSpec, ElementType,
} from './models/types.js';
export { PiscinaRunner, type PiscinaRunnerOptions } from './runtime/workers/piscina-runner.js';
export { InThreadRunner, type InThreadRunnerOptions } from './models/in-thread-runner.js';
export type { ModelRunner } from './models/runner.js';
export { createDaemon, type CreateDaemonOptions } from './runtime/create-daemon.js';
export { Daemon, type StopReport } from './runtime/daemon.js';
export type { LoadedDaemonConfig } from './config/load-daemon.js';
export type { DaemonConfigInput, DaemonFile } from './config/daemon-schema.js';
export type { LifecycleState } from './core/lifecycle.js';
export type { Clock } from './core/clock.js';
export { KafkaSource, type KafkaSourceOptions, type KafkaPartitionLag } from './streams/kafka/kafka-source.js';
export { KafkaSink, type KafkaSinkOptions } from './streams/kafka/kafka-sink.js';
export type { KafkaConnection } from './streams/kafka/kafka-client.js';
export { EmbeddedLog, type EmbeddedLogOptions } from './streams/embedded/embedded-log.js';
export type { Source, SourceEvent, Sink, RecordBatch, RejectedRecord } from './streams/types.js';
export type { InboundRecord, OutboundRecord, TopicPartition, RecordHeader, OutboundHeader, Headers } from './pipeline/record.js';
export { loadPipelineFile, parsePipeline } from './config/load.js';
export { compilePipeline } from './config/compile-pipeline.js';
export type { PipelineFile } from './config/pipeline-schema.js';
export type { CompiledPipeline } from './config/compiled.js';
export type { Placement } from './config/placement.js';
export { createMetrics, type Metrics } from './core/metrics.js';
export { createLogger } from './core/log.js';
export {
  VerdictError, ConfigError, DecodeError, SchemaError, FeatureError, ModelNotFoundError, ModelIntegrityError,
  ModelSignatureError, ModelInputError, ModelOutputError, ModelExecutionError, ModelTimeoutError, WorkerCrashedError,
  MailboxFullError, ActorStoppedError, AbortedError, RuleError, TransportError, ServerListenError, InternalError,
  StateError, StateKeyMissingError, StateEventTimeError,
  isVerdictError, asVerdictError,
  type SerializedError,
} from './core/errors.js';
export { IntegerRangeError, NonFiniteNumberError, UnsupportedValueError } from './core/errors.js';
// Configuration limits (README "Limits").
export {
  ModelFileTooLargeError, RegistryPathError, RuleTooLargeError, TooManyStepsError, TooManyFeaturesError, TooManyRulesError,
  RuleCostExceededError,
} from './core/errors.js';

let defaultInstance: Verdict | undefined;

/**
 * `Verdict.executeModel` on the default instance (the sample registry, `models/registry`): one row resolves
 * with its outputs, an array of rows with `{ outputs, errors }` (one entry per row, in order). Times out
 * after 5000 ms unless `options.timeoutMs` says otherwise (`MODEL_TIMEOUT`); rejects with `MODEL_NOT_FOUND`,
 * `MODEL_INPUT_INVALID`, … as documented there.
 */
export function executeModel(modelId: string, rows: readonly RowInputs[], options?: ExecuteModelOptions): Promise<RowResults>;
export function executeModel(modelId: string, row: RowInputs, options?: ExecuteModelOptions): Promise<RowOutputs>;
export function executeModel(modelId: string, input: RowInputs | readonly RowInputs[], options?: ExecuteModelOptions): Promise<RowOutputs | RowResults> {
  const verdict = (defaultInstance ??= new Verdict());
  return Array.isArray(input) ? verdict.executeModel(modelId, input as readonly RowInputs[], options) : verdict.executeModel(modelId, input as RowInputs, options);
}

/**
 * `Verdict.executePipeline` on the default instance (the card-risk sample): an event object in, its
 * `{ outcome, outputs, decision }` out. Bad input resolves as a dead-letter outcome with the typed error
 * (`decision: null`), never a rejection; it rejects only when the pipeline cannot be built (`CONFIG_INVALID`:
 * an unknown pipeline name, a missing model).
 */
export function executePipeline(target: string | readonly string[], input: Record<string, unknown>): Promise<PipelineResult> {
  return (defaultInstance ??= new Verdict()).executePipeline(target, input);
}

/** Drains and releases the default instance's models and workers, so a script using the functions above can exit. */
export async function closeDefault(): Promise<void> {
  const instance = defaultInstance;
  defaultInstance = undefined;
  await instance?.close();
}
