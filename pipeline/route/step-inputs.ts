/**
 * Building one model input row from an event's features, its fields and earlier steps' outputs, in the
 * element type the model declares for the input: float32 and float64 inputs are built as typed arrays of
 * that type (so a float64 input never passes through a Float32Array), every other type as plain values that
 * the model actor converts and checks (an integer input refuses 2.5 rather than truncating it).
 */
import type { CompiledInput, CompiledStep } from '../../config/compiled.js';
import { FeatureError } from '../../core/errors.js';
import type { InputScalar, OutputScalar, RowInputs, RowOutputs, RowValues } from '../../models/types.js';
import type { IngestedEvent } from '../ingest/ingest.js';

function eventValue(event: Readonly<Record<string, unknown>>, path: readonly string[]): InputScalar {
  let cur: unknown = event;
  for (const part of path) cur = (cur as Record<string, unknown> | undefined)?.[part];
  if (typeof cur === 'string' || typeof cur === 'boolean' || typeof cur === 'bigint') return cur;
  if (typeof cur !== 'number' || !Number.isFinite(cur)) throw new FeatureError(`event.${path.join('.')} is not a finite number, a boolean or a string`);
  return cur;
}

function asNumber(value: InputScalar | OutputScalar, where: string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  // A bigint reaches here only from a decoded event; the compiler lets only integer fields feed numbers.
  if (typeof value === 'bigint' && value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(value);
  throw new FeatureError(`${where} is ${typeof value === 'string' ? 'a string' : 'not exact as a number'}; the input takes numbers`);
}

function stepValue(outputs: Readonly<Record<string, RowOutputs>>, step: string, output: string): OutputScalar | readonly OutputScalar[] {
  const value = outputs[step]?.[output];
  if (value === undefined) throw new FeatureError(`steps.${step}.${output} is not available`);
  return value;
}

function buildInput(input: CompiledInput, ev: IngestedEvent, outputs: Readonly<Record<string, RowOutputs>>): RowValues {
  const { type } = input.spec;
  const only = input.sources.length === 1 ? input.sources[0] : undefined;
  // The common case, one feature set feeding one input, reuses the ingested vector without copying; it is
  // already in the input's float type, or the packer narrows or converts it.
  if (only?.kind === 'feature') return ev.features[only.set]!;
  if (type === 'float32' || type === 'float64') {
    const row = type === 'float64' ? new Float64Array(input.width) : new Float32Array(input.width);
    let at = 0;
    for (const src of input.sources) {
      if (src.kind === 'feature') {
        row.set(ev.features[src.set]!, at);
      } else if (src.kind === 'event') {
        row[at] = asNumber(eventValue(ev.event, src.path), `event.${src.path.join('.')}`);
      } else {
        const value = stepValue(outputs, src.step, src.output);
        const where = `steps.${src.step}.${src.output}`;
        if (Array.isArray(value)) for (let j = 0; j < value.length; j++) row[at + j] = asNumber(value[j] as OutputScalar, where);
        else row[at] = asNumber(value as OutputScalar, where);
      }
      at += src.width;
    }
    // A finite value beyond float32's range is stored as ±Infinity: refused, never handed to the model.
    if (type === 'float32') {
      for (let i = 0; i < row.length; i++) {
        if (!Number.isFinite(row[i]!)) throw new FeatureError(`input '${input.name}' column ${i} is beyond float32's range (±3.4e38)`, { details: { input: input.name, column: i } });
      }
    }
    return row;
  }
  // Integer, bool, float16 and string inputs: the values as they are, converted and checked when packed.
  const row: InputScalar[] = [];
  for (const src of input.sources) {
    if (src.kind === 'feature') {
      for (const v of ev.features[src.set]!) row.push(v);
    } else if (src.kind === 'event') {
      row.push(eventValue(ev.event, src.path));
    } else {
      const value = stepValue(outputs, src.step, src.output);
      if (Array.isArray(value)) row.push(...(value as readonly OutputScalar[]));
      else row.push(value as OutputScalar);
    }
  }
  return row;
}

export function buildStepInputs(step: CompiledStep, ev: IngestedEvent, outputs: Readonly<Record<string, RowOutputs>>): RowInputs {
  const row: Record<string, RowValues> = {};
  for (const input of step.inputs) row[input.name] = buildInput(input, ev, outputs);
  return row;
}
