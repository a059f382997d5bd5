/** Test helpers for worker crashes: a pipeline whose events can carry CRASH_MARKER into a model row's first value. */
import type { PipelineFile } from '../../config/pipeline-schema.js';

/**
 * The sample pipeline, with `velocity_1h` as the first model input (so an event can carry the marker into
 * the row's first value), no lower bound on it, long timeouts, and fail-open for incomplete joins.
 */
export function crashPipeline(file: PipelineFile, mode: 'blocks' | 'inference'): PipelineFile {
  const transaction = file.schemas['transaction']!;
  const { min: _min, ...velocity } = transaction.fields['velocity_1h']!;
  const dense = file.input.features['dense']!;
  return {
    ...file,
    schemas: { ...file.schemas, transaction: { ...transaction, fields: { ...transaction.fields, velocity_1h: velocity } } },
    input: { ...file.input, features: { ...file.input.features, dense: [{ field: 'velocity_1h', transform: 'identity' }, ...dense.slice(1)] } },
    steps: file.steps.map((s) => ({ ...s, timeoutMs: 60_000 })),
    join: { ...file.join, deadlineMs: 60_000 },
    decision: { ...file.decision, onIncomplete: { policy: 'fail-open' } },
    runtime: { ...file.runtime, mode, workers: 1 },
  };
}

