/** The feature mapper: transforms, one-hot, field equality, dotted paths, in-place writes, and typed errors. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { z } from 'zod';
import { createTransactionGenerator } from '../bench/generator.js';
import { featureSchema, type FeatureSpec } from '../config/pipeline-schema.js';
import { ConfigError, FeatureError, isVerdictError } from '../core/errors.js';
import { compileFeatures } from '../pipeline/ingest/features.js';

const PIPELINE = fileURLToPath(new URL('../../config/pipelines/card-risk.yaml', import.meta.url));
const specs = (raw: unknown[]): FeatureSpec[] => z.array(featureSchema).parse(raw);

/** Asserts a FeatureError naming the field, with its stable code. */
const featureError = (field: string) => (err: unknown): boolean => {
  assert.ok(err instanceof FeatureError);
  assert.ok(isVerdictError(err));
  assert.equal(err.code, 'INPUT_FEATURE_FAILED');
  assert.equal(err.details.field, field);
  assert.match(err.message, new RegExp(field.replace('.', '\\.')));
  return true;
};

void describe('compileFeatures', () => {
  void test('identity, log1p and bool transforms write one column each', () => {
    const m = compileFeatures(specs([
      { field: 'amount' }, { field: 'amount', transform: 'log1p' }, { field: 'flag', transform: 'bool' }, { field: 'n', transform: 'bool' },
    ]));
    assert.equal(m.width, 4);
    assert.deepEqual(m.columns, ['amount', 'log1p(amount)', 'flag', 'n']);
    const row = m.map({ amount: 99, flag: true, n: 0 });
    assert.equal(row[0], 99);
    assert.equal(row[1], Math.fround(Math.log1p(99)));
    assert.equal(row[2], 1);
    assert.equal(row[3], 0);
    assert.deepEqual([...m.map({ amount: 0, flag: false, n: 7 })], [0, 0, 0, 1]);
  });

  void test('one-hot writes a 1 in the matching column and all zeros for an unknown value', () => {
    const m = compileFeatures(specs([{ field: 'cat', oneHot: ['a', 'b', 'c'] }]));
    assert.deepEqual(m.columns, ['cat=a', 'cat=b', 'cat=c']);
    assert.deepEqual([...m.map({ cat: 'b' })], [0, 1, 0]);
    assert.deepEqual([...m.map({ cat: 'zzz' })], [0, 0, 0]);
    // A reused buffer must not keep the previous row's 1.
    const out = new Float32Array(3);
    m.map({ cat: 'a' }, out);
    m.map({ cat: 'c' }, out);
    assert.deepEqual([...out], [0, 0, 1]);
  });

  void test('equalsField is 1 when both fields hold the same value, else 0', () => {
    const m = compileFeatures(specs([{ field: 'country', equalsField: 'card_country' }]));
    assert.deepEqual(m.columns, ['country==card_country']);
    assert.equal(m.map({ country: 'FR', card_country: 'FR' })[0], 1);
    assert.equal(m.map({ country: 'FR', card_country: 'DE' })[0], 0);
  });

  void test('dotted paths read nested objects, at any depth', () => {
    const m = compileFeatures(specs([{ field: 'device.is_new', transform: 'bool' }, { field: 'a.b.c' }]));
    assert.deepEqual([...m.map({ device: { is_new: true }, a: { b: { c: 2.5 } } })], [1, 2.5]);
  });

  void test('writes in place at an offset, so a batch can be filled without copies', () => {
    const m = compileFeatures(specs([{ field: 'x' }, { field: 'y' }]));
    const batch = new Float32Array(6);
    assert.equal(m.map({ x: 1, y: 2 }, batch, 2), batch);
    assert.deepEqual([...batch], [0, 0, 1, 2, 0, 0]);
    assert.throws(() => m.map({ x: 1, y: 2 }, batch, 5), RangeError);
  });

  void test('a missing field throws FeatureError naming it', () => {
    const m = compileFeatures(specs([{ field: 'amount' }, { field: 'device.is_new', transform: 'bool' }]));
    assert.throws(() => m.map({ device: { is_new: true } }), featureError('amount'));
    assert.throws(() => m.map({ amount: 1, device: {} }), featureError('device.is_new'));
    assert.throws(() => m.map({ amount: 1, device: 'phone' }), featureError('device.is_new'));
    const eq = compileFeatures(specs([{ field: 'country', equalsField: 'card_country' }]));
    assert.throws(() => eq.map({ country: 'FR' }), featureError('card_country'));
    const hot = compileFeatures(specs([{ field: 'cat', oneHot: ['a'] }]));
    assert.throws(() => hot.map({}), featureError('cat'));
  });

  void test('a non-numeric or non-finite value throws FeatureError naming the field', () => {
    const m = compileFeatures(specs([{ field: 'amount', transform: 'log1p' }]));
    assert.throws(() => m.map({ amount: '12' }), featureError('amount'));
    assert.throws(() => m.map({ amount: Number.NaN }), featureError('amount'));
    assert.throws(() => m.map({ amount: -1 }), featureError('amount'));
    const b = compileFeatures(specs([{ field: 'flag', transform: 'bool' }]));
    assert.throws(() => b.map({ flag: 'yes' }), featureError('flag'));
  });

  void test('a one-hot spec listing a value twice is a configuration error', () => {
    assert.throws(() => compileFeatures(specs([{ field: 'cat', oneHot: ['a', 'a'] }])), ConfigError);
  });

  void test('the card-risk dense spec maps a generated transaction and the card state it saw to the 22 columns the models expect', () => {
    const doc = z.object({ input: z.object({ features: z.object({ dense: z.array(featureSchema) }) }) })
      .parse(parse(readFileSync(PIPELINE, 'utf8')));
    const m = compileFeatures(doc.input.features.dense);
    assert.equal(m.width, 22);
    const { event } = createTransactionGenerator({ seed: 1 }).next();
    // A card's first transaction: counts of itself, no previous country, no time since (its `missing`, 15).
    const state = {
      txn_count_10m: 1, txn_count_1h: 1, txn_count_24h: 1, amount_sum_1h: event.amount, amount_mean_7d: event.amount,
      merchants_24h: 1, countries_24h: 1, last_country: null, since_last_s: null,
    };
    const row = m.map(event, undefined, 0, state);
    assert.equal(row[0], Math.fround(Math.log1p(event.amount)));
    assert.equal(row[1], Math.fround(Math.log1p(event.amount)));
    assert.deepEqual([row[3], row[4], row[5], row[7], row[8]], [1, 1, 1, 1, 1]);
    assert.equal(row[9], 15);
    assert.equal(row[10], 0, 'no previous country');
    assert.equal(row[12], event.device.is_new ? 1 : 0);
    assert.equal(row[14], event.country === event.card_country ? 1 : 0);
    assert.equal(row.subarray(15).reduce((a, b) => a + b, 0), 1, 'exactly one merchant category is hot');
  });
});

void describe('state feature columns', () => {
  const m = compileFeatures(specs([
    { state: 'count' }, { state: 'avg', transform: 'log1p', missing: -1 }, { state: 'flag', transform: 'bool' },
    { state: 'last', equalsField: 'country' },
  ]));
  const state = (over: Record<string, number | string | boolean | null>) => ({ count: 3, avg: 4, flag: true, last: 'FR', ...over });

  void test('one column each, named after the state value', () => {
    assert.deepEqual(m.columns, ['state.count', 'log1p(state.avg)', 'state.flag', 'state.last==country']);
    assert.deepEqual([...m.map({ country: 'FR' }, undefined, 0, state({}))], [3, Math.fround(Math.log1p(4)), 1, 1]);
    assert.deepEqual([...m.map({ country: 'DE' }, new Float64Array(4), 0, state({ count: 0.5, flag: 0 }))], [0.5, Math.log1p(4), 0, 0]);
  });

  void test('null is the column\'s missing value as is (default 0); a null compared with a field is 0', () => {
    assert.deepEqual([...m.map({ country: 'FR' }, undefined, 0, state({ avg: null, count: null, last: null }))], [0, -1, 1, 0]);
  });

  void test('a value that is not a number, an absent value, an absent compared field: FeatureError naming it', () => {
    assert.throws(() => m.map({ country: 'FR' }, undefined, 0, state({ count: 'x' })), featureError('state.count'));
    assert.throws(() => m.map({ country: 'FR' }, undefined, 0, state({ avg: true })), featureError('state.avg'));
    assert.throws(() => m.map({ country: 'FR' }, undefined, 0, state({ avg: -1 })), featureError('state.avg'));
    assert.throws(() => m.map({ country: 'FR' }), featureError('state.count'));
    assert.throws(() => m.map({}, undefined, 0, state({})), featureError('country'));
  });
});
