import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ConfigError, SchemaError, Verdict, executeModel, closeDefault } from '../index.js';
import { transactions } from './helpers/pipelines.js';

describe('programmatic API', () => {
  const verdict = new Verdict({ workers: 1 });
  after(async () => {
    await verdict.close();
    await closeDefault();
  });

  test('executeModel runs one row through the model version asked for', async () => {
    const features = new Float32Array(22); // the production versions' width (card-risk.yaml's dense set)
    features[0] = Math.log1p(50); // a small amount, everything else zero
    const out = await verdict.executeModel('fraud_gbt@production', { features });
    assert.equal(typeof out['fraud_probability'], 'number');
    const p = out['fraud_probability'] as number;
    assert.ok(p >= 0 && p <= 1);
    const v4 = await verdict.executeModel('fraud_gbt@4', { features });
    assert.notEqual(v4['fraud_probability'], p, 'a different version answers differently');
  });

  test('executeModel refuses an unknown model with a typed error', async () => {
    await assert.rejects(verdict.executeModel('no_such_model', { features: new Float32Array(16) }), { code: 'MODEL_NOT_FOUND' });
  });

  test('executeModel refuses a row of the wrong width with a typed error', async () => {
    await assert.rejects(verdict.executeModel('fraud_mlp', { features: new Float32Array(3) }), { code: 'MODEL_INPUT_INVALID' });
  });

  test('executePipeline by name returns every step output and the decision', async () => {
    const [tx] = transactions(1, 3);
    const r = await verdict.executePipeline('card-risk', tx!.event);
    assert.ok(r.decision !== null);
    assert.equal(r.decision.pipeline, 'card-risk');
    assert.ok(['approve', 'review', 'decline'].includes(r.decision.action));
    assert.equal(typeof r.outputs['gbt']?.['fraud_probability'], 'number');
    assert.equal(typeof r.outputs['anomaly']?.['score'], 'number');
    assert.deepEqual(Object.keys(r.decision.completeness).sort(), ['anomaly', 'gbt', 'mlp']);
  });

  test('executePipeline with model ids runs those versions under the same rules', async () => {
    const [tx] = transactions(1, 3);
    const r = await verdict.executePipeline(['fraud_gbt@canary', 'txn_autoencoder'], tx!.event);
    assert.ok(r.decision !== null);
    assert.deepEqual(r.decision.models, { gbt: 'fraud_gbt@4', anomaly: 'txn_autoencoder@2' });
    assert.deepEqual(Object.keys(r.outputs).sort(), ['anomaly', 'gbt']);
  });

  test('executePipeline sends an invalid event to the dead-letter outcome, not an exception', async () => {
    const r = await verdict.executePipeline('card-risk', { id: 'x', amount: 'lots' });
    assert.equal(r.decision, null);
    assert.equal(r.outcome.kind, 'dead-letter');
    assert.equal(r.outcome.kind === 'dead-letter' ? r.outcome.error.code : '', 'INPUT_SCHEMA_MISMATCH');
  });

  test(`executePipeline resolves any event the schema refuses as a dead letter with ${SchemaError.code}`, async () => {
    const [tx] = transactions(1, 3);
    const refused: unknown[] = [null, 'not an event', [], { ...tx!.event, amount: Number.NaN }, { ...tx!.event, amount: 2n ** 70n }, { id: 'x' }];
    for (const event of refused) {
      const r = await verdict.executePipeline('card-risk', event as Record<string, unknown>);
      assert.equal(r.outcome.kind, 'dead-letter', String(event));
      assert.equal(r.outcome.kind === 'dead-letter' ? r.outcome.error.code : '', SchemaError.code);
      assert.equal(r.decision, null);
      assert.deepEqual(r.outputs, {});
    }
  });

  test(`executePipeline rejects with ${ConfigError.code} only when the pipeline cannot be built`, async () => {
    const [tx] = transactions(1, 3);
    await assert.rejects(verdict.executePipeline('no-such-pipeline', tx!.event), { code: ConfigError.code });
    await assert.rejects(verdict.executePipeline(['no_such_model'], tx!.event), (err: Error & { code?: string }) =>
      err.code === ConfigError.code && /steps\[0\]\.model: MODEL_NOT_FOUND/.test(err.message));
  });

  test('the module-level executeModel uses a default instance', async () => {
    const out = await executeModel('txn_autoencoder', { features: new Float32Array(22) });
    assert.equal(typeof out['score'], 'number');
  });
});
