/**
 * Verdict's public API. Everything a user may import is named here; nothing else is public.
 *
 *   const verdict = new Verdict();
 *   await verdict.executeModel('fraud_gbt@production', { features });
 *   await verdict.executePipeline('card-risk', transaction);
 *   await verdict.executePipeline(['fraud_gbt@canary', 'txn_autoencoder'], transaction);
 *
 * `executeModel` and `executePipeline` are also exported as functions over a lazily created default
 * instance (the sample registry and pipeline), closed by `closeDefault()`.
 */
import { Verdict } from './runtime/verdict.js';
import type { PipelineResult } from './runtime/engine.js';
import type { RowInputs, RowOutputs } from './models/types.js';

export { Verdict, type VerdictOptions } from './runtime/verdict.js';
export { Engine, type EngineOptions, type PipelineResult } from './runtime/engine.js';
export { ActorPool } from './runtime/actor-pool.js';
export type { Decision } from './pipeline/decide/decision-actor.js';
export type { Outcome, Decided, DeadLetter } from './pipeline/outcome.js';
export { ModelRegistry } from './models/registry.js';
export type {
  ModelManifest, ResolvedModel, RowInputs, RowOutputs, RowValues, InputScalar, OutputScalar, TensorSpec, ElementType,
} from './models/types.js';
export { PiscinaRunner } from './models/piscina-runner.js';
export { InThreadRunner } from './models/in-thread-runner.js';
export type { ModelRunner } from './models/runner.js';
export { EmbeddedLog } from './streams/embedded/embedded-log.js';
export type { Source, Sink, RecordBatch, RejectedRecord } from './streams/types.js';
export type { InboundRecord, OutboundRecord, TopicPartition, RecordHeader, OutboundHeader, Headers } from './pipeline/record.js';
export { loadPipelineFile, parsePipeline } from './config/load.js';
export { compilePipeline } from './config/compile-pipeline.js';
export type { PipelineFile } from './config/pipeline-schema.js';
export type { CompiledPipeline } from './config/compiled.js';
export { createMetrics, type Metrics } from './core/metrics.js';
export { createLogger } from './core/log.js';
export {
  VerdictError, ConfigError, DecodeError, SchemaError, FeatureError, ModelNotFoundError, ModelIntegrityError,
  ModelSignatureError, ModelInputError, ModelExecutionError, ModelTimeoutError, WorkerCrashedError,
  MailboxFullError, ActorStoppedError, RuleError, TransportError, ServerListenError, InternalError,
  isVerdictError, asVerdictError,
  type SerializedError,
} from './core/errors.js';
export { IntegerRangeError, NonFiniteNumberError, UnsupportedValueError } from './core/errors.js';

let defaultInstance: Verdict | undefined;

/** Runs one model version on one row, on the default instance. */
export function executeModel(modelId: string, input: RowInputs): Promise<RowOutputs> {
  return (defaultInstance ??= new Verdict()).executeModel(modelId, input);
}

/** Runs an event through the default pipeline, or through the listed models with its rules. */
export function executePipeline(target: string | readonly string[], input: Record<string, unknown>): Promise<PipelineResult> {
  return (defaultInstance ??= new Verdict()).executePipeline(target, input);
}

/** Releases the default instance's workers, so a script using the functions above can exit. */
export async function closeDefault(): Promise<void> {
  const instance = defaultInstance;
  defaultInstance = undefined;
  await instance?.close();
}
