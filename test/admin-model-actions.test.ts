/**
 * Promote and rollback as the admin API does them, on a copy of the sample registry: checked first (an
 * unknown model is MODEL_NOT_FOUND, an unknown version ADMIN_BAD_REQUEST), then the alias moves, then the
 * live swap's outcome decides the answer (a refused swap is ADMIN_CONFLICT, 409).
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { packageRoot } from '../core/paths.js';
import { ModelRegistry } from '../models/registry.js';
import { httpStatusOf } from '../runtime/admin/admin-errors.js';
import type { SwapOutcome } from '../runtime/admin/admin-target.js';
import { modelsInUse, promoteModel, rollbackModel } from '../runtime/admin/model-actions.js';
import { asVerdictError } from '../core/errors.js';

function registryCopy(): ModelRegistry {
  const dir = join(mkdtempSync(join(tmpdir(), 'verdict-admin-registry-')), 'registry');
  cpSync(resolve(packageRoot, 'models/registry'), dir, { recursive: true });
  return new ModelRegistry(dir);
}

const statusOf = async (promise: Promise<unknown>): Promise<[number, string]> => {
  try {
    await promise;
    return [200, 'ok'];
  } catch (err) {
    const e = asVerdictError(err);
    return [httpStatusOf(e), e.code];
  }
};

describe('admin model actions', () => {
  test('an unknown model is 404, an unknown version 400, a bad alias 400; nothing moves', async () => {
    const registry = registryCopy();
    const deps = { registry, refresh: undefined };
    assert.deepEqual(await statusOf(promoteModel(deps, 'nobody', 1, undefined)), [404, 'MODEL_NOT_FOUND']);
    assert.deepEqual(await statusOf(rollbackModel(deps, 'nobody', undefined)), [404, 'MODEL_NOT_FOUND']);
    assert.deepEqual(await statusOf(promoteModel(deps, 'fraud_gbt', 7, undefined)), [400, 'ADMIN_BAD_REQUEST']);
    assert.deepEqual(await statusOf(promoteModel(deps, 'fraud_gbt', 4, 'not an alias')), [400, 'CONFIG_INVALID']);
    assert.deepEqual((await registry.list()).find((m) => m.name === 'fraud_gbt')?.aliases, { production: 3, canary: 4 });
  });

  test('without live swaps the alias moves and the answer says nothing was swapped', async () => {
    const registry = registryCopy();
    const result = await promoteModel({ registry, refresh: undefined }, 'fraud_gbt', 4, undefined);
    assert.deepEqual({ ...result.change, at: '' }, { name: 'fraud_gbt', alias: 'production', from: 3, to: 4, at: '' });
    assert.equal(result.swaps, null);
    const back = await rollbackModel({ registry, refresh: undefined }, 'fraud_gbt', 'production');
    assert.deepEqual([back.change.from, back.change.to], [4, 3]);
  });

  test('with live swaps the refresh runs after the move; a refused swap of this model is 409 ADMIN_CONFLICT', async () => {
    const registry = registryCopy();
    const ok: SwapOutcome = { step: 'gbt', role: 'primary', from: 'fraud_gbt@3', to: 'fraud_gbt@4', ok: true, ms: 12 };
    let aliasAtRefresh: number | undefined;
    const refresh = async (): Promise<readonly SwapOutcome[]> => {
      aliasAtRefresh = (await registry.list()).find((m) => m.name === 'fraud_gbt')?.aliases['production'];
      return [ok];
    };
    const swapped = await promoteModel({ registry, refresh }, 'fraud_gbt', 4, undefined);
    assert.equal(aliasAtRefresh, 4, 'the refresh sees the moved alias');
    assert.deepEqual(swapped.swaps, [ok]);

    const refused: SwapOutcome = {
      step: 'gbt', role: 'primary', from: 'fraud_gbt@4', to: 'fraud_gbt@3', ok: false, ms: 3,
      error: { code: 'MODEL_INTEGRITY', message: 'sha256 mismatch', retryable: false, details: {} },
    };
    const other: SwapOutcome = { step: 'mlp', role: 'primary', from: 'fraud_mlp@1', to: 'fraud_mlp@2', ok: false, ms: 1 };
    await assert.rejects(rollbackModel({ registry, refresh: () => Promise.resolve([refused, other]) }, 'fraud_gbt', undefined), (err: unknown) => {
      const e = asVerdictError(err);
      assert.equal(e.code, 'ADMIN_CONFLICT');
      assert.equal(httpStatusOf(e), 409);
      assert.match(e.message, /step gbt \(primary\) fraud_gbt@3: MODEL_INTEGRITY sha256 mismatch/);
      assert.doesNotMatch(e.message, /fraud_mlp/, 'another model\'s refusal is not this request\'s');
      return true;
    });
    // Another model's refused swap does not fail this one's promote.
    const unrelated = await promoteModel({ registry, refresh: () => Promise.resolve([other]) }, 'fraud_gbt', 4, undefined);
    assert.deepEqual(unrelated.swaps, [other]);
  });

  test('models in use: each registry model with the step roles whose version in force is one of its own', async () => {
    const registry = registryCopy();
    const { models } = await modelsInUse(registry, { steps: [
      { step: 'gbt', roles: [{ role: 'primary', id: 'fraud_gbt@production', ref: 'fraud_gbt@3' }, { role: 'shadow', id: 'fraud_gbt@4', ref: 'fraud_gbt@4' }] },
      { step: 'mlp', roles: [{ role: 'primary', id: 'fraud_mlp@production', ref: 'fraud_mlp@2' }] },
    ] });
    assert.deepEqual(models.map((m) => [m.name, m.inUse.map((u) => `${u.step}/${u.role}=${u.ref}`)]), [
      ['fraud_gbt', ['gbt/primary=fraud_gbt@3', 'gbt/shadow=fraud_gbt@4']],
      ['fraud_mlp', ['mlp/primary=fraud_mlp@2']],
      ['txn_autoencoder', []],
    ]);
  });
});
