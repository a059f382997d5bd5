import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { compilePipeline } from '../config/compile-pipeline.js';
import type { FieldSpec, PipelineFile } from '../config/pipeline-schema.js';
import { defaultPipelinePath, packageRoot } from '../core/paths.js';
import { Engine } from '../runtime/engine.js';
import { ModelRegistry } from '../models/registry.js';
import type { InboundRecord } from '../pipeline/record.js';
import { relaxedTimeouts, samplePipeline, samplePipelinePath, transactions } from './helpers/pipelines.js';
import { stateStage } from './helpers/state-reads.js';

const baseDir = dirname(samplePipelinePath);
const registry = new ModelRegistry(resolve(baseDir, '../../models/registry'));
const SCHEMA = 'transaction';

/** The sample pipeline with its schema edited: fields replaced or added, id and key set. */
function schema(edit: { fields?: Record<string, FieldSpec | undefined>; id?: string; key?: string }) {
  return (f: PipelineFile): PipelineFile => {
    const s = f.schemas[SCHEMA]!;
    const fields = Object.fromEntries(Object.entries({ ...s.fields, ...edit.fields }).filter((e): e is [string, FieldSpec] => e[1] !== undefined));
    return { ...f, schemas: { [SCHEMA]: { ...s, fields, id: edit.id ?? s.id, key: edit.key ?? s.key } } };
  };
}
const field = (type: FieldSpec['type'], more: Partial<FieldSpec> = {}): FieldSpec => ({ type, required: true, ...more });
const dense = (edit: (specs: PipelineFile['input']['features'][string]) => PipelineFile['input']['features'][string]) =>
  (f: PipelineFile): PipelineFile => ({ ...f, input: { ...f.input, features: { dense: edit(f.input.features['dense']!) } } });
const rule = (when: string) => (f: PipelineFile): PipelineFile => ({ ...f, decision: { ...f.decision, rules: [{ when, action: 'review', reason: 'r' }] } });

async function refused(edit: (f: PipelineFile) => PipelineFile, message: string): Promise<void> {
  await assert.rejects(compilePipeline(await samplePipeline(edit), registry, { baseDir }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.ok(err.message.includes(message), `"${err.message}" does not contain "${message}"`);
    return true;
  });
}

describe('verdict validate refuses what would fail for every event, naming the config path', () => {
  test('an id field the schema does not declare', () =>
    refused(schema({ id: 'tx_id' }), 'schemas.transaction.id: "tx_id" is not a field of schema "transaction"'));
  test('an id field that is a number, or optional', async () => {
    await refused(schema({ id: 'tx_id', fields: { tx_id: field('number') } }), 'schemas.transaction.id: field "tx_id" is a number; an event id must be a string or an integer');
    await refused(schema({ fields: { id: field('string', { required: false }) } }), 'schemas.transaction.id: field "id" is optional; the event id must be required');
  });
  test('a key field that is not declared, or is a boolean', async () => {
    await refused(schema({ key: 'account' }), 'schemas.transaction.key: "account" is not a field of schema "transaction"');
    await refused(schema({ fields: { key: field('boolean') } }), 'schemas.transaction.key: field "key" is a boolean; a key must be a string or an integer');
  });
  test('a feature of an undeclared field, or of a field of the wrong type', async () => {
    await refused(dense((d) => [{ field: 'amountt', transform: 'log1p' }, ...d.slice(1)]), 'input.features.dense[0].field: "amountt" is not a field of schema "transaction"');
    await refused(dense((d) => [{ field: 'currency', transform: 'identity' }, ...d.slice(1)]), 'input.features.dense[0].field: "currency" is a string; a numeric feature (transform identity) needs a number or an integer');
    await refused(dense((d) => [{ field: 'device', oneHot: ['a'] }, ...d.slice(1)]), 'input.features.dense[0].field: "device" is an object; oneHot needs a string, number or boolean');
    await refused(dense((d) => [...d.slice(0, 9), { field: 'merchant_category', equalsField: 'merchant' }]), 'input.features.dense[9].equalsField: "merchant" is not a field of schema "transaction"');
    await refused(dense((d) => [{ field: 'amount.cents', transform: 'identity' }, ...d.slice(1)]), 'input.features.dense[0].field: "amount.cents" is not a field of schema "transaction"');
  });
  test('a one-hot value outside the field\'s enum, and a one-hot value listed twice', async () => {
    await refused(schema({ fields: { merchant_category: field('string', { enum: ['grocery', 'electronics', 'travel', 'gambling', 'crypto', 'fuel'] }) } }),
      'input.features.dense[15].oneHot[6]: "restaurants" is not in the enum of "merchant_category"');
    await refused(dense((d) => [...d.slice(0, 9), { field: 'merchant_category', oneHot: ['grocery', 'grocery', 'travel', 'gambling', 'crypto', 'fuel', 'restaurants'] }]),
      'input.features.dense[9].oneHot[1]: "grocery" is listed twice (first at oneHot[0])');
  });
  test('schema fields no event can satisfy', async () => {
    await refused(schema({ fields: { hour_of_day: field('integer', { min: 5, max: 3 }) } }), 'schemas.transaction.fields.hour_of_day: min 5 is above max 3; no value can pass');
    await refused(schema({ fields: { hour_of_day: field('integer', { min: 0.5, max: 0.7 }) } }), 'schemas.transaction.fields.hour_of_day: no integer lies between min 0.5 and max 0.7 within ±(2^53 − 1); no value can pass');
    await refused(schema({ fields: { hour_of_day: field('integer', { min: 1e300 }) } }), 'schemas.transaction.fields.hour_of_day: no integer lies between min 1e+300 and max ∞ within ±(2^53 − 1); no value can pass');
    await refused(schema({ fields: { amount: field('number', { enum: ['1'] }) } }), 'schemas.transaction.fields.amount.enum: only string fields take an enum; the field is a number');
    await refused(schema({ fields: { 'amount.cents': field('integer') } }), 'schemas.transaction.fields.amount.cents: its parent "amount" is a number, not an object');
  });
  test('an event.<field> step input the schema does not declare', () =>
    refused((f) => ({ ...f, steps: f.steps.map((s, i) => (i === 0 ? { ...s, inputs: { features: ['event.amountt', 'features.dense'] } } : s)) }),
      'steps[0].inputs.features: "amountt" is not a field of schema "transaction"'));
  test('CEL that reads an undeclared event field, in a rule, a step condition, the score and a fallback rule', async () => {
    await refused(rule('event.amountt > 500.0'), 'decision.rules[0].when: event.amountt is not a field of schema "transaction"');
    await refused(rule('event.amount.cents > 5'), 'decision.rules[0].when: event.amount.cents is inside "amount", a number');
    await refused((f) => ({ ...f, steps: f.steps.map((s, i) => (i === 2 ? { ...s, when: 'event.velocity > 1.0' } : s)) }), 'steps[2].when: event.velocity is not a field of schema "transaction"');
    await refused((f) => ({ ...f, decision: { ...f.decision, score: 'event.risk * 1.0' } }), 'decision.score: event.risk is not a field of schema "transaction"');
    await refused((f) => ({ ...f, decision: { ...f.decision, onIncomplete: { policy: 'fallback', rules: [{ when: 'event.amnt > 1.0', action: 'review', reason: 'x' }], default: 'approve' } } }),
      'decision.onIncomplete.rules[0].when: event.amnt is not a field of schema "transaction"');
  });
  test('CEL that reads an output the step\'s model does not have', async () => {
    await refused(rule('steps.gbt.fraud_prob > 0.5'), 'decision.rules[0].when: step "gbt" (fraud_gbt@3) has no output "fraud_prob" (it has: fraud_probability)');
    await refused((f) => ({ ...f, steps: f.steps.map((s, i) => (i === 2 ? { ...s, when: 'steps.gbt.probability > 0.3' } : s)) }), 'steps[2].when: step "gbt" (fraud_gbt@3) has no output "probability"');
  });
  test('CEL that guards an undeclared field with has(), calls a method, reads inside an object, or quotes "event.x" compiles', async () => {
    for (const when of ['has(event.promo) && event.promo == "x"', 'event.currency.startsWith("G")', 'event.device.model == "x"', 'event.country == "event.nope"']) {
      const p = await compilePipeline(await samplePipeline(rule(when)), registry, { baseDir });
      assert.equal(p.decision.rules[0]?.when, when);
    }
  });
  test('the CLI validate runs the same compiler: an integer id is ok, an undeclared one is refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'verdict-contract-'));
    const text = readFileSync(defaultPipelinePath, 'utf8').replace('../../models/registry', resolve(packageRoot, 'models/registry'));
    const cli = resolve(packageRoot, 'dist/cli/main.js');
    const validate = (yaml: string) => {
      const file = join(dir, `p${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(file, yaml);
      return spawnSync(process.execPath, [cli, 'validate', file], { encoding: 'utf8', timeout: 60_000 });
    };
    const ok = validate(text.replace('    id: id\n', '    id: tx_id\n').replace('      id: { type: string }', '      tx_id: { type: integer }'));
    assert.equal(ok.status, 0, ok.stderr);
    const bad = validate(text.replace('    id: id\n', '    id: tx_id\n'));
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^error CONFIG_INVALID: schemas\.transaction\.id: "tx_id" is not a field of schema "transaction"/);
  });
});

describe('integer ids and keys at run time', () => {
  let engine: Engine;
  before(async () => {
    const file = await samplePipeline((f) => relaxedTimeouts(schema({
      id: 'tx_id', key: 'account', fields: { id: undefined, key: undefined, tx_id: field('integer'), account: field('integer', { required: false }) },
    })({ ...f, runtime: { workers: 0, mode: 'inference', intraOpThreads: 1 } })));
    engine = await Engine.create(file, { baseDir });
  });
  after(async () => {
    await engine.close();
  });
  const { id: _id, key: _key, ...event } = transactions(1, 3)[0]!.event;
  const record = (value: unknown, key: string | null = null): InboundRecord => ({
    topic: 'transactions', partition: 0, offset: 0, key: key === null ? null : Buffer.from(key), value: Buffer.from(JSON.stringify(value)), headers: [], timestamp: 0,
  });
  /** The record through the stream's block path: the decision's event id and key, read from what the sink gets. */
  const decidedFromBytes = async (r: InboundRecord): Promise<[unknown, unknown]> => {
    // State is keyed by the record key; a record built without one reads state under a stand-in key, since
    // this is about the decision's identity, which comes from the event (or the record key when it has one).
    const [encoded] = await engine.processBlock([r], undefined, stateStage(engine.pipeline)([{ ...r, key: r.key ?? Buffer.from('stand-in') }]));
    assert.equal(encoded?.kind, 'decision');
    const decision = JSON.parse(String(encoded.output.value)) as { eventId: unknown; key: unknown };
    return [decision.eventId, decision.key];
  };

  test('an integer id 42 is decided as eventId "42", an integer key 7 keys it as "7"', async () => {
    const r = await engine.evaluate({ ...event, tx_id: 42, account: 7 });
    assert.deepEqual([r.decision?.eventId, r.decision?.key], ['42', '7']);
    assert.deepEqual(await decidedFromBytes(record({ ...event, tx_id: 42, account: 7 })), ['42', '7']);
  });

  test('without the optional key field the record key keys the decision, and without one the id', async () => {
    assert.deepEqual(await decidedFromBytes(record({ ...event, tx_id: 43 }, 'card-9')), ['43', 'card-9']);
    const r = await engine.evaluate({ ...event, tx_id: 44 });
    assert.deepEqual([r.decision?.eventId, r.decision?.key], ['44', '44']);
  });

  test('an id beyond 2^53 or a fractional id is refused per event by the schema, with a typed error', async () => {
    const unsafe = await engine.evaluate({ ...event, tx_id: 2 ** 60 });
    assert.equal(unsafe.outcome.kind, 'dead-letter');
    assert.deepEqual(unsafe.outcome.kind === 'dead-letter' ? [unsafe.outcome.error.code, unsafe.outcome.error.message] : [],
      ['INPUT_SCHEMA_MISMATCH', 'event does not match schema "transaction": tx_id: Too big: expected int to be <=9007199254740991']);
    const fractional = await engine.evaluate({ ...event, tx_id: 42.5 });
    assert.deepEqual(fractional.outcome.kind === 'dead-letter' ? fractional.outcome.error.code : '', 'INPUT_SCHEMA_MISMATCH');
    const next = await engine.evaluate({ ...event, tx_id: 45 });
    assert.equal(next.decision?.eventId, '45', 'the stream goes on');
  });
});

describe('the identity contract, value by value', () => {
  test('strings as they are, safe integers and bigints as decimal strings; the rest a typed error or absent', async () => {
    const { identityString } = await import('../config/input-contract.js');
    assert.deepEqual([identityString('tx-1', 'id', 'id'), identityString(42, 'id', 'id'), identityString(0, 'id', 'id'), identityString(-7, 'id', 'id'), identityString(2n ** 64n, 'id', 'id')],
      ['tx-1', '42', '0', '-7', '18446744073709551616']);
    assert.deepEqual([identityString(undefined, 'id', 'id'), identityString(null, 'id', 'id')], [undefined, undefined]);
    for (const [value, message] of [
      [42.5, 'event id in field "id" must be a string or a safe integer, got 42.5'],
      [2 ** 60, `event id in field "id" must be a string or a safe integer, got ${2 ** 60}`],
      [Number.NaN, 'event id in field "id" must be a string or a safe integer, got NaN'],
      ['', 'event id in field "id" is empty'],
      [true, 'event id in field "id" must be a string or an integer, got boolean'],
    ] as const) {
      assert.throws(() => identityString(value, 'id', 'id'), { code: 'INPUT_SCHEMA_MISMATCH', message });
    }
  });
});
