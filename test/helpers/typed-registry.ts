/**
 * Pipelines over the element-type fixture registry (test/fixtures/types, written by make_types.py): one
 * Identity model per ONNX element type, `amount_delta` (float64 x - 1000000.01) and `ratio` (a / (a + b)).
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { pipelineFileSchema, type PipelineFile } from '../../config/pipeline-schema.js';

export const TYPES_DIR = fileURLToPath(new URL('../../../test/fixtures/types/', import.meta.url));
export const TYPES_REGISTRY = join(TYPES_DIR, 'registry');

export interface TypedPipelineSpec {
  readonly fields: Record<string, 'number' | 'integer' | 'boolean' | 'string'>;
  readonly features?: Record<string, Array<{ field: string }>>;
  readonly steps: Array<{ id: string; model: string; inputs: Record<string, string | string[]> }>;
  readonly rules?: Array<{ when: string; action: string; reason: string }>;
  readonly score?: string;
  readonly onIncomplete?: { policy: 'fail-closed'; action: string } | { policy: 'fail-open' };
  readonly batching?: { maxBatchSize?: number; maxDelayMs?: number };
  readonly runtime?: { workers: number; mode: 'blocks' | 'inference' };
}

/** A parsed pipeline file on the fixture registry; events carry `id` plus `fields`. In-thread unless `runtime` says otherwise. */
export function typedPipeline(spec: TypedPipelineSpec): PipelineFile {
  const fields: Record<string, { type: string; required?: boolean }> = { id: { type: 'string' } };
  for (const [name, type] of Object.entries(spec.fields)) fields[name] = { type };
  const firstNumber = Object.entries(spec.fields).find(([, t]) => t === 'number' || t === 'integer')?.[0];
  return pipelineFileSchema.parse({
    pipeline: 'typed',
    schemas: { tx: { fields, id: 'id', key: 'id' } },
    input: { schema: 'tx', format: 'json', features: spec.features ?? (firstNumber === undefined ? {} : { dense: [{ field: firstNumber }] }) },
    steps: spec.steps,
    // 'all': a step that fails makes the join incomplete, so the incomplete policy decides.
    join: { mode: 'all', deadlineMs: 5_000 },
    decision: {
      rules: spec.rules ?? [],
      default: 'approve',
      ...(spec.score === undefined ? {} : { score: spec.score }),
      onIncomplete: spec.onIncomplete ?? { policy: 'fail-closed', action: 'review' },
    },
    models: { registry: TYPES_REGISTRY, batching: spec.batching ?? {} },
    runtime: spec.runtime ?? { workers: 0, mode: 'inference' },
  });
}
