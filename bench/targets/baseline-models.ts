/**
 * What the naive and fused baselines share: the card-risk pipeline's three models opened directly in
 * onnxruntime-node (same files, same session options as Verdict's workers), its feature mapping and input
 * schema, and its decision rules rewritten as plain TypeScript. The baselines are hand-written for
 * card-risk on purpose: they stand for the code a team would write instead of configuring Verdict.
 */
import { InferenceSession, Tensor } from 'onnxruntime-node';
import type { CompiledPipeline, CompiledStep } from '../../config/compiled.js';
import { ConfigError, StateEventTimeError, StateKeyMissingError, asVerdictError } from '../../core/errors.js';
import { compileFeatures, type FeatureMapper } from '../../pipeline/ingest/features.js';
import { compileValidator, type EventValidator } from '../../pipeline/ingest/validate.js';
import { PartitionState } from '../../pipeline/state/partition-state.js';
import type { StateValues } from '../../pipeline/state/types.js';
import type { Headers, OutboundRecord } from '../../pipeline/record.js';
import { DECISION_ID_HEADER } from './target.js';

export interface BaselineModel {
  readonly session: InferenceSession;
  readonly inputName: string;
  readonly outputName: string;
  readonly ref: string;
}

export interface BaselineModels {
  readonly pipeline: string;
  readonly gbt: BaselineModel;
  readonly anomaly: BaselineModel;
  readonly mlp: BaselineModel;
  readonly features: FeatureMapper;
  readonly validate: EventValidator;
  readonly format: CompiledPipeline['input']['format'];
  /** `input.limits`: the baseline refuses what Verdict refuses, at the same cost. */
  readonly limits: CompiledPipeline['input']['limits'];
  readonly output: CompiledPipeline['output'];
  /**
   * The per-card state an event sees (card-risk's `state` section), kept per input partition in offset
   * order as any hand-written consumer would have to; throws the typed StateError for a record it cannot
   * apply (dead-lettered). Empty values for a pipeline without state.
   */
  state(partition: number, offset: number, key: Uint8Array | null, event: Readonly<Record<string, unknown>>): StateValues;
  close(): Promise<void>;
}

/** The cascade threshold of card-risk.yaml: the MLP runs only when the trees see some risk. */
export const MLP_THRESHOLD = 0.3;

export async function loadBaselineModels(pipeline: CompiledPipeline): Promise<BaselineModels> {
  const step = (id: string): CompiledStep => {
    const s = pipeline.steps.find((x) => x.id === id);
    if (s === undefined) throw new ConfigError(`the baselines are written for card-risk; pipeline ${pipeline.name} has no step "${id}"`);
    return s;
  };
  const specs = pipeline.input.features['dense'];
  if (specs === undefined) throw new ConfigError(`the baselines are written for card-risk; pipeline ${pipeline.name} has no features.dense`);
  const options: InferenceSession.SessionOptions = {
    intraOpNumThreads: pipeline.placement.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  };
  const open = async (s: CompiledStep): Promise<BaselineModel> => {
    const { manifest, path, ref } = s.model;
    const input = manifest.inputs[0];
    const output = manifest.outputs[0];
    if (input === undefined || output === undefined) throw new ConfigError(`model ${ref} has no input or output in its manifest`);
    return { session: await InferenceSession.create(path, options), inputName: input.name, outputName: output.name, ref };
  };
  const [gbt, anomaly, mlp] = await Promise.all([open(step('gbt')), open(step('anomaly')), open(step('mlp'))]);
  const def = pipeline.state;
  const partitions = new Map<number, PartitionState>();
  const state = (partition: number, offset: number, key: Uint8Array | null, event: Readonly<Record<string, unknown>>): StateValues => {
    if (def === null) return {};
    let part = partitions.get(partition);
    if (part === undefined) partitions.set(partition, (part = new PartitionState(def)));
    const read = part.apply(offset, key, event);
    if ('values' in read) return read.values;
    throw read.error.code === StateKeyMissingError.code ? new StateKeyMissingError(read.error.message) : new StateEventTimeError(read.error.message);
  };
  return {
    pipeline: pipeline.name,
    gbt, anomaly, mlp,
    features: compileFeatures(specs),
    validate: compileValidator(pipeline.input.schema, pipeline.input.schemaName),
    format: pipeline.input.format,
    limits: pipeline.input.limits,
    output: pipeline.output,
    state,
    close: async () => {
      await Promise.all([gbt.session.release(), anomaly.session.release(), mlp.session.release()]);
    },
  };
}

/** Runs one model on `rows` rows of `width` floats; returns its first output column. */
export async function runModel(model: BaselineModel, rows: Float32Array, n: number, width: number): Promise<Float32Array> {
  const feeds = { [model.inputName]: new Tensor('float32', rows.subarray(0, n * width), [n, width]) };
  const result = await model.session.run(feeds);
  const out = result[model.outputName];
  if (out === undefined) throw new ConfigError(`model ${model.ref} returned no ${model.outputName}`);
  return out.data as Float32Array;
}

export interface BaselineDecision {
  readonly action: string;
  readonly score: number;
  readonly reasons: readonly string[];
}

/** card-risk.yaml's `decision` block, by hand: the first rule that fires sets the action. */
export function decide(gbt: number, anomaly: number, mlp: number | undefined, event: Readonly<Record<string, unknown>>, state: StateValues): BaselineDecision {
  const amount = Number(event['amount']);
  const num = (name: string): number => Number(state[name] ?? 0);
  const score = mlp === undefined ? gbt : (gbt + mlp) / 2;
  if (gbt > 0.9) return { action: 'decline', score, reasons: ['high_gbt'] };
  if (mlp !== undefined && mlp > 0.8 && gbt > 0.5) return { action: 'decline', score, reasons: ['gbt_and_mlp_agree'] };
  if (mlp !== undefined && mlp > 0.5) return { action: 'review', score, reasons: ['mlp_suspicious'] };
  if (anomaly > 3.0 && amount > 500.0) return { action: 'review', score, reasons: ['anomalous_amount'] };
  if (num('txn_count_10m') >= 6 && amount < 10) return { action: 'decline', score, reasons: ['card_testing_burst'] };
  if (num('txn_count_10m') >= 4 && amount < 10) return { action: 'review', score, reasons: ['card_testing_suspected'] };
  const device = event['device'] as { is_new?: unknown } | undefined;
  if (num('countries_24h') >= 2 && num('txn_count_1h') >= 2 && event['country'] !== event['card_country'] && device?.is_new === true) {
    return { action: 'review', score, reasons: ['country_flip'] };
  }
  return { action: 'approve', score, reasons: [] };
}

export interface DecidedEvent {
  readonly id: string;
  readonly key: string;
  readonly decision: BaselineDecision;
  readonly mlpRan: boolean;
}

/** The decision as Verdict would write it (minus the per-stage timings), keyed like the input. */
export function decisionRecord(models: BaselineModels, d: DecidedEvent, inputKey: Buffer | string | null): OutboundRecord {
  const value = JSON.stringify({
    eventId: d.id,
    key: d.key,
    pipeline: models.pipeline,
    action: d.decision.action,
    score: d.decision.score,
    reasons: d.decision.reasons,
    models: { gbt: models.gbt.ref, anomaly: models.anomaly.ref, ...(d.mlpRan ? { mlp: models.mlp.ref } : {}) },
    completeness: { gbt: 'ok', anomaly: 'ok', mlp: d.mlpRan ? 'ok' : 'skipped' },
    complete: true,
    policy: 'rules',
  });
  return { topic: models.output.topic, key: inputKey, value, headers: [{ key: DECISION_ID_HEADER, value: d.id }] };
}

/** The input record, unchanged, to the dead-letter topic with the reason's code. */
export function deadLetterRecord(models: BaselineModels, err: unknown, key: Buffer | string | null, value: Buffer | string | null, headers: Headers): OutboundRecord {
  const error = asVerdictError(err);
  return {
    topic: models.output.deadLetter,
    key,
    value,
    headers: [...headers, { key: 'verdict-error-code', value: error.code }, { key: 'verdict-error-message', value: error.message.slice(0, 1000) }],
  };
}
