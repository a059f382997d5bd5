/**
 * The admin API's model endpoints over a registry: list with the steps that use each model, promote and
 * roll back (checked first, so an unknown model is a 404 and an unknown version a 400), then the live
 * swap, when the daemon follows aliases.
 */
import { AdminConflictError, AdminRequestError, ModelNotFoundError, asVerdictError } from '../../core/errors.js';
import { assertModelName } from '../../models/model-id.js';
import type { ModelRegistry } from '../../models/registry.js';
import type { AdminModelChange, AdminModels, SwapOutcome, VersionsInUse } from './admin-target.js';

export interface ModelActionDeps {
  readonly registry: ModelRegistry;
  /** Checks every alias now and swaps what changed (`engine.models.refresh()`); undefined: versions are fixed at start-up. */
  readonly refresh: (() => Promise<readonly SwapOutcome[]>) | undefined;
}

/** The registry's models, each with the step roles whose version in force is one of its versions. */
export async function modelsInUse(registry: ModelRegistry, versions: VersionsInUse): Promise<AdminModels> {
  const list = await registry.list();
  return {
    models: list.map((m) => ({
      ...m,
      inUse: versions.steps.flatMap(({ step, roles }) =>
        roles.filter((r) => r.ref.startsWith(`${m.name}@`)).map((r) => ({ step, role: r.role, ref: r.ref }))),
    })),
  };
}

/** REGISTRY_PATH_INVALID for a name that is no plain directory name; MODEL_NOT_FOUND unless the registry has the model; its versions when it does. */
async function versionsOf(registry: ModelRegistry, name: string): Promise<readonly number[]> {
  assertModelName(name);
  const model = (await registry.list()).find((m) => m.name === name);
  if (model === undefined) throw new ModelNotFoundError(`model ${name} is not in the registry ${registry.root}`, { details: { name } });
  // A model the registry could not list (a path that leads out of it): its own typed error, rebuilt from its code.
  if (model.problem !== undefined) throw asVerdictError(model.problem);
  return model.versions;
}

/**
 * Points the alias at the version, then swaps. Rejects with MODEL_NOT_FOUND (no such model), ADMIN_BAD_REQUEST
 * (no such version), CONFIG_INVALID (a bad alias name), REGISTRY_PATH_INVALID (a name that is no plain directory name, a
 * path a symlink leads out of the registry), MODEL_INTEGRITY (the version fails its sha256), MODEL_FILE_TOO_LARGE or
 * ADMIN_CONFLICT (the alias moved but a swap to it was refused: the old version keeps serving).
 */
export async function promoteModel(deps: ModelActionDeps, name: string, version: number, alias: string | undefined): Promise<AdminModelChange> {
  const versions = await versionsOf(deps.registry, name);
  if (!versions.includes(version)) {
    throw new AdminRequestError(`model ${name} has no version ${version} (versions: ${versions.join(', ') || 'none'})`, { details: { name, version } });
  }
  const change = await deps.registry.promote(name, version, alias);
  return { change, swaps: await swapped(deps, name) };
}

/** Moves the alias back to its previous version, then swaps. Rejects as `promoteModel` does, and CONFIG_INVALID when the alias has no earlier version. */
export async function rollbackModel(deps: ModelActionDeps, name: string, alias: string | undefined): Promise<AdminModelChange> {
  await versionsOf(deps.registry, name);
  const change = await deps.registry.rollback(name, alias);
  return { change, swaps: await swapped(deps, name) };
}

/** The swaps the alias move caused; ADMIN_CONFLICT when one of this model's was refused. */
async function swapped(deps: ModelActionDeps, name: string): Promise<readonly SwapOutcome[] | null> {
  if (deps.refresh === undefined) return null;
  const swaps = await deps.refresh();
  const refused = swaps.filter((s) => !s.ok && s.to.startsWith(`${name}@`));
  if (refused.length > 0) {
    const why = refused.map((s) => `step ${s.step} (${s.role}) ${s.to}: ${s.error?.code ?? 'refused'} ${s.error?.message ?? ''}`.trim()).join('; ');
    throw new AdminConflictError(`the alias moved, but the swap was refused and the version in force keeps serving: ${why}`, {
      details: { name, refused: refused.length },
    });
  }
  return swaps;
}
