/**
 * Which model version each step of a block runs. A block is processed with the bindings that were current
 * when it was handed to processing, and keeps them to the end, so a model change (a promoted alias, see
 * runtime/live-models.ts) never moves events already in flight: they finish on the versions they started
 * with, and their decisions name those versions.
 */
import type { CompiledPipeline } from '../../config/compiled.js';
import type { ResolvedModel } from '../../models/types.js';

/** The versions one step runs: its primary, optionally a canary for a sticky share of keys, and a shadow. */
export interface StepBinding {
  /** The version that decides, for every event not in the canary's share. */
  readonly primary: ResolvedModel;
  /** A candidate that decides for `percent` % of event keys (sticky per key), or null. */
  readonly canary: { readonly model: ResolvedModel; readonly percent: number } | null;
  /** A candidate run on the same rows whose output never enters the decision, or null. */
  readonly shadow: ResolvedModel | null;
}

/** The versions every step runs, by pipeline step index; `generation` grows by one with every change. */
export interface ModelBindings {
  readonly generation: number;
  readonly steps: readonly StepBinding[];
}

/** The bindings a pipeline was compiled with (each step's model, canary and shadow): generation 0. */
export function compiledBindings(pipeline: CompiledPipeline): ModelBindings {
  return {
    generation: 0,
    steps: pipeline.steps.map((step) => ({
      primary: step.model,
      canary: step.canary === null ? null : { model: step.canary.model, percent: step.canary.percent },
      shadow: step.shadow?.model ?? null,
    })),
  };
}

/** Every distinct version the bindings use, by ref. */
export function boundModels(bindings: ModelBindings): Map<string, ResolvedModel> {
  const models = new Map<string, ResolvedModel>();
  for (const step of bindings.steps) {
    models.set(step.primary.ref, step.primary);
    if (step.canary !== null) models.set(step.canary.model.ref, step.canary.model);
    if (step.shadow !== null) models.set(step.shadow.ref, step.shadow);
  }
  return models;
}
