/**
 * A small pipeline file with per-key state, on the shipped autoencoder (its `score` moves with every input
 * column), written as YAML so tests read what a user writes. Its feature set is as wide as the model's
 * input, whatever the registry's models were trained on: the first four columns are the ones under test,
 * the rest `log1p(amount)`.
 */
import { resolve } from 'node:path';
import { parsePipeline } from '../../config/load.js';
import type { PipelineFile } from '../../config/pipeline-schema.js';
import { packageRoot } from '../../core/paths.js';
import { ModelRegistry } from '../../models/registry.js';

export const stateRegistryRoot = resolve(packageRoot, 'models/registry');
export const STATE_MODEL = 'txn_autoencoder@production';

/** The per-row width of the model's first input. */
export async function modelWidth(model = STATE_MODEL): Promise<number> {
  const resolved = await new ModelRegistry(stateRegistryRoot).resolve(model);
  const width = resolved.manifest.inputs[0]?.shape[1];
  if (typeof width !== 'number') throw new Error(`${model} has no fixed row width`);
  return width;
}

/** The declared aggregates, in declaration order (what a decision's `state` lists). */
export const STATE_NAMES = ['txn_count_1h', 'amount_sum_24h', 'amount_avg_7d', 'last_country', 'since_last_s'] as const;

export const STATE_SECTION = `
state:
  eventTime: { field: ts, unit: ms }
  aggregates:
    txn_count_1h:   { op: count, window: 1h }
    amount_sum_24h: { op: sum, field: amount, window: 24h, bucket: 1h }
    amount_avg_7d:  { op: mean, field: amount, window: 7d }
    last_country:   { op: last, field: country }
    since_last_s:   { op: timeSince }
`;

/** The four columns under test read from state… */
export const STATE_COLUMNS = `
      - { state: txn_count_1h }
      - { state: amount_avg_7d, missing: 7 }
      - { state: last_country, equalsField: country }
      - { state: since_last_s, transform: log1p }`;

/** …or from event fields holding the same numbers (n0..n3). */
export const FIELD_COLUMNS = `
      - { field: n0 }
      - { field: n1 }
      - { field: n2 }
      - { field: n3, transform: log1p }`;

export interface StatePipelineOptions {
  readonly width: number;
  /** The first four feature columns (YAML list items). Default STATE_COLUMNS. */
  readonly columns?: string;
  /** The `state` section. Default STATE_SECTION; '' for none. */
  readonly state?: string;
  /** `decision.rules` items (YAML). */
  readonly rules?: string;
  /** The second step's `when`. */
  readonly when?: string;
  readonly runtime?: string;
}

export const STATE_RULES = `
    - { when: "state.txn_count_1h > 3.0", action: review, reason: busy_card }
    - { when: "state.amount_avg_7d == null", action: approve, reason: no_history }
    - { when: "state.last_country != null && state.last_country != event.country", action: review, reason: country_changed }`;

export function statePipelineYaml(o: StatePipelineOptions): string {
  const rest = Array.from({ length: o.width - 4 }, () => '\n      - { field: amount, transform: log1p }').join('');
  return `
pipeline: stateful
schemas:
  t:
    id: id
    fields:
      id: { type: string }
      ts: { type: integer, min: 0 }
      amount: { type: number, min: 0 }
      country: { type: string }
      n0: { type: number, required: false }
      n1: { type: number, required: false }
      n2: { type: number, required: false }
      n3: { type: number, required: false }
input:
  topic: tx
  schema: t
  format: json
  features:
    dense:${o.columns ?? STATE_COLUMNS}${rest}
steps:
  - { id: m, model: ${STATE_MODEL}, inputs: { features: features.dense }, timeoutMs: 60000 }
  - { id: busy, model: ${STATE_MODEL}, inputs: { features: features.dense }, timeoutMs: 60000, when: ${JSON.stringify(o.when ?? 'state.txn_count_1h > 3.0')} }
join: { mode: all, deadlineMs: 60000 }
decision:
  score: "steps.m.score"
  rules:${o.rules ?? STATE_RULES}
  default: approve
output: { topic: decisions, deadLetter: dlq }
models: { registry: ${JSON.stringify(stateRegistryRoot)}, aliasPollMs: 0 }
runtime: ${o.runtime ?? '{ workers: 0 }'}
${o.state ?? STATE_SECTION}`;
}

export function statePipeline(o: StatePipelineOptions): PipelineFile {
  return parsePipeline(statePipelineYaml(o), 'stateful.yaml');
}
