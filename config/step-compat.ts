/**
 * Whether another version of a model can stand in for a step's compiled one: as a canary or a shadow, or
 * after its alias moves (runtime/live-models.ts). The step's input mapping was checked against the compiled
 * version's signature, and rules and later steps may read any of its outputs, so a candidate must take
 * exactly the same inputs (names, element types, values per row) and offer every output of the compiled
 * version with the same element type and values per row. Extra outputs are allowed: nothing reads them.
 */
import type { ResolvedModel, TensorSpec } from '../models/types.js';
import type { CompiledStep } from './compiled.js';

/** Values per row of a tensor, or null when a non-batch dimension is dynamic (such a model cannot be fed). */
function valuesPerRow(spec: TensorSpec): number | null {
  let n = 1;
  for (const dim of spec.shape.slice(1)) {
    if (typeof dim !== 'number') return null;
    n *= dim;
  }
  return n;
}

function describe(spec: TensorSpec): string {
  return `${spec.type}[${spec.shape.join(', ')}]`;
}

/**
 * Why `candidate` cannot run in place of `step.model` (one sentence naming both refs and the tensor), or
 * null when it can. Pure: reads the manifests only, never the model files.
 */
export function stepIncompatibility(step: Pick<CompiledStep, 'id' | 'model'>, candidate: ResolvedModel): string | null {
  const compiled = step.model;
  const against = `step "${step.id}" was compiled with ${compiled.ref}`;
  const mine = candidate.manifest;
  for (const spec of compiled.manifest.inputs) {
    const other = mine.inputs.find((s) => s.name === spec.name);
    if (other === undefined) return `${candidate.ref} has no input "${spec.name}", which ${against} feeds`;
    if (other.type !== spec.type || valuesPerRow(other) !== valuesPerRow(spec)) {
      return `${candidate.ref} input "${spec.name}" is ${describe(other)}, but ${against} feeds ${describe(spec)}`;
    }
  }
  for (const spec of mine.inputs) {
    if (!compiled.manifest.inputs.some((s) => s.name === spec.name)) {
      return `${candidate.ref} needs input "${spec.name}", which ${against} does not feed`;
    }
  }
  for (const spec of compiled.manifest.outputs) {
    const other = mine.outputs.find((s) => s.name === spec.name);
    if (other === undefined) return `${candidate.ref} has no output "${spec.name}", which ${against} offers to rules and later steps`;
    if (other.type !== spec.type || valuesPerRow(other) !== valuesPerRow(spec)) {
      return `${candidate.ref} output "${spec.name}" is ${describe(other)}, but ${against} gives ${describe(spec)}`;
    }
  }
  return null;
}
