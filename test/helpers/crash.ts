/** Test helpers for worker crashes: a pipeline whose events can carry CRASH_MARKER into a model row's first value. */
import type { PipelineFile } from '../../config/pipeline-schema.js';

/**
 * The sample pipeline, with `ip_risk` as the first model input (so an event can carry the marker into
 * the row's first value), no bounds on it, long timeouts, and fail-open for incomplete joins.
 */
export function crashPipeline(file: PipelineFile, mode: 'blocks' | 'inference'): PipelineFile {
  const transaction = file.schemas['transaction']!;
  const { min: _min, max: _max, ...ipRisk } = transaction.fields['ip_risk']!;
  const dense = file.input.features['dense']!;
  return {
    ...file,
    schemas: { ...file.schemas, transaction: { ...transaction, fields: { ...transaction.fields, ip_risk: ipRisk } } },
    input: { ...file.input, features: { ...file.input.features, dense: [{ field: 'ip_risk', transform: 'identity' }, ...dense.slice(1)] } },
    steps: file.steps.map((s) => ({ ...s, timeoutMs: 60_000 })),
    join: { ...file.join, deadlineMs: 60_000 },
    decision: { ...file.decision, onIncomplete: { policy: 'fail-open' } },
    runtime: { ...file.runtime, mode, workers: 1 },
  };
}

