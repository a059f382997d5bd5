/** Building one model input row from an event's features, its fields and earlier steps' outputs. */
import type { CompiledInput, CompiledStep } from '../../config/compiled.js';
import { FeatureError } from '../../core/errors.js';
import type { RowInputs, RowOutputs } from '../../models/types.js';
import type { IngestedEvent } from '../ingest/ingest.js';

function eventNumber(event: Readonly<Record<string, unknown>>, path: readonly string[]): number {
  let cur: unknown = event;
  for (const part of path) cur = (cur as Record<string, unknown> | undefined)?.[part];
  if (typeof cur === 'boolean') return cur ? 1 : 0;
  if (typeof cur !== 'number' || !Number.isFinite(cur)) throw new FeatureError(`event.${path.join('.')} is not a finite number`);
  return cur;
}

function buildInput(input: CompiledInput, ev: IngestedEvent, outputs: Readonly<Record<string, RowOutputs>>): ArrayLike<number> {
  const only = input.sources.length === 1 ? input.sources[0] : undefined;
  // The common case, one feature set feeding one input, reuses the ingested vector without copying.
  if (only?.kind === 'feature') return ev.features[only.set] as Float32Array;
  const row = new Float32Array(input.width);
  let at = 0;
  for (const src of input.sources) {
    if (src.kind === 'feature') {
      row.set(ev.features[src.set] as Float32Array, at);
    } else if (src.kind === 'event') {
      row[at] = eventNumber(ev.event, src.path);
    } else {
      const value = outputs[src.step]?.[src.output];
      if (value === undefined) throw new FeatureError(`steps.${src.step}.${src.output} is not available`);
      if (typeof value === 'number') row[at] = value;
      else row.set(value, at);
    }
    at += src.width;
  }
  return row;
}

export function buildStepInputs(step: CompiledStep, ev: IngestedEvent, outputs: Readonly<Record<string, RowOutputs>>): RowInputs {
  const row: Record<string, ArrayLike<number>> = {};
  for (const input of step.inputs) row[input.name] = buildInput(input, ev, outputs);
  return row;
}
