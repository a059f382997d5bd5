/**
 * Issue 9, item 5: each model input is packed in the element type the model declares, and every element type
 * onnxruntime-node supports goes in and comes out of a real ONNX model (test/fixtures/types), through the
 * registry and the engine.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { compilePipeline } from '../config/compile-pipeline.js';
import { ModelInputError, ModelOutputError } from '../core/errors.js';
import { Engine } from '../runtime/engine.js';
import { ModelRegistry } from '../models/registry.js';
import { ELEMENT_TYPES, type InputScalar, type RowValues } from '../models/types.js';
import { TYPES_DIR, TYPES_REGISTRY, typedPipeline, type TypedPipelineSpec } from './helpers/typed-registry.js';

const deltaPipeline = (source: 'event' | 'features'): TypedPipelineSpec => ({
  fields: { amount: 'number' },
  features: { dense: [{ field: 'amount' }] },
  steps: [{ id: 'delta', model: 'amount_delta', inputs: { x: source === 'event' ? 'event.amount' : 'features.dense' } }],
  rules: [{ when: 'steps.delta.y > 0.0', action: 'review', reason: 'above the threshold' }],
});

async function decide(spec: TypedPipelineSpec, event: Record<string, unknown>) {
  const engine = await Engine.create(typedPipeline(spec), { baseDir: TYPES_DIR });
  try {
    return await engine.evaluate(event);
  } finally {
    await engine.close();
  }
}

describe('float64 inputs keep full precision', () => {
  for (const source of ['event', 'features'] as const) {
    test(`1000000.02 - 1000000.01 is +0.01 and reviews when fed from ${source === 'event' ? 'an event field' : 'a feature set'}`, async () => {
      const r = await decide(deltaPipeline(source), { id: 'tx-1', amount: 1000000.02 });
      assert.ok(r.decision !== null);
      const y = r.outputs['delta']?.['y'] as number;
      assert.ok(Math.abs(y - 0.01) < 1e-9, `y = ${y}`);
      assert.equal(r.decision.action, 'review');
      const below = await decide(deltaPipeline(source), { id: 'tx-2', amount: 1000000.00 });
      assert.equal(below.decision?.action, 'approve');
    });
  }
});

describe('every element type in and out of a real ONNX model', () => {
  let engine: Engine;
  before(async () => {
    engine = await Engine.create(typedPipeline(deltaPipeline('event')), { baseDir: TYPES_DIR });
  });
  after(async () => {
    await engine.close();
  });

  const roundTrips: Array<[string, RowValues, unknown]> = [
    ['bool', [true], true],
    ['bool', [false], false],
    ['int8', [-128], -128],
    ['int16', [-32768], -32768],
    ['int32', [2 ** 31 - 1], 2 ** 31 - 1],
    ['int64', [-(2 ** 53 - 1)], -(2 ** 53 - 1)],
    ['uint8', [255], 255],
    ['uint16', [65535], 65535],
    ['uint32', [2 ** 32 - 1], 2 ** 32 - 1],
    ['uint64', [2 ** 53 - 1], 2 ** 53 - 1],
    ['float16', [1.5], 1.5],
    ['float16', [0.1], 0.0999755859375],
    ['float32', [0.1], Math.fround(0.1)],
    ['float64', [0.1 + 0.2], 0.1 + 0.2],
    ['string', ['grocery'], 'grocery'],
    ['int64', new BigInt64Array([-7n]), -7],
  ];
  for (const [type, x, expected] of roundTrips) {
    test(`${type} ${String(x[0])} round-trips as ${typeof expected} ${String(expected)}`, async () => {
      const out = await engine.executeModel(`t_${type}`, { x });
      assert.deepEqual(out, { y: expected });
    });
  }

  const refusals: Array<[string, InputScalar]> = [
    ['int32', 2.5], ['uint8', 256], ['int8', -129], ['int16', 32768], ['uint16', -1], ['uint32', 2 ** 32],
    ['int64', 2 ** 53 + 2], ['uint64', -1], ['bool', 2], ['float16', 1e6], ['string', 7], ['float32', 'grocery'],
    // Finite, but ±Infinity once stored as float32; a string onnxruntime would cut at the NUL or re-encode.
    ['float32', 1e39], ['float32', -3.5e38], ['string', 'a\u0000b'], ['string', 'a\ud800'],
  ];
  for (const [type, value] of refusals) {
    test(`${type} refuses ${String(value)} with ${ModelInputError.code}`, async () => {
      await assert.rejects(engine.executeModel(`t_${type}`, { x: [value] }), { code: ModelInputError.code });
    });
  }

  test(`an int64 output beyond 2^53 is ${ModelOutputError.code}, not a rounded number`, async () => {
    await assert.rejects(engine.executeModel('t_int64', { x: new BigInt64Array([2n ** 60n]) }), { code: ModelOutputError.code });
    assert.deepEqual(await engine.executeModel('t_int64', { x: new BigInt64Array([2n ** 53n - 1n]) }), { y: 2 ** 53 - 1 });
  });
});

describe('a value beyond float32 never reaches a float32 model as Infinity', () => {
  const spec = (source: 'event' | 'features'): TypedPipelineSpec => ({
    fields: { v: 'number' },
    // Without a feature set on the event path, so the step input's own check is what refuses.
    features: source === 'features' ? { dense: [{ field: 'v' }] } : {},
    steps: [{ id: 'f', model: 't_float32', inputs: { x: source === 'event' ? 'event.v' : 'features.dense' } }],
  });
  for (const source of ['event', 'features'] as const) {
    test(`from ${source === 'event' ? 'an event field' : 'a feature set'}: 1e39 is a dead letter, 3e38 is decided`, async () => {
      const big = await decide(spec(source), { id: 'tx-big', v: 1e39 });
      assert.equal(big.outcome.kind, 'dead-letter');
      assert.equal(big.outcome.kind === 'dead-letter' ? big.outcome.error.code : '', 'INPUT_FEATURE_FAILED');
      const fine = await decide(spec(source), { id: 'tx-ok', v: 3e38 });
      assert.equal(fine.outputs['f']?.['y'], Math.fround(3e38));
    });
  }
});

test('a feature set no step reads is not computed, so it refuses nothing', async () => {
  const r = await decide({
    fields: { v: 'number' },
    features: { unused: [{ field: 'v' }] },
    steps: [{ id: 'f', model: 't_float64', inputs: { x: 'event.v' } }],
  }, { id: 'tx-wide', v: 6e38 });
  assert.equal(r.outcome.kind, 'decision');
  assert.equal(r.outputs['f']?.['y'], 6e38);
});

describe('typed event fields drive typed models and CEL sees their types', () => {
  const spec: TypedPipelineSpec = {
    fields: { count: 'integer', category: 'string', flagged: 'boolean' },
    steps: [
      { id: 'cnt', model: 't_int32', inputs: { x: 'event.count' } },
      { id: 'cat', model: 't_string', inputs: { x: 'event.category' } },
      { id: 'flag', model: 't_bool', inputs: { x: 'event.flagged' } },
    ],
    rules: [
      { when: 'steps.cnt.y > 3', action: 'decline', reason: 'many' },
      { when: "steps.cat.y == 'grocery'", action: 'review', reason: 'grocery' },
      { when: 'steps.flag.y', action: 'review', reason: 'flagged' },
    ],
  };
  let engine: Engine;
  before(async () => {
    engine = await Engine.create(typedPipeline(spec), { baseDir: TYPES_DIR });
  });
  after(async () => {
    await engine.close();
  });

  test('int32, string and bool outputs reach the rules as number, string and boolean', async () => {
    const cases: Array<[Record<string, unknown>, string, readonly string[]]> = [
      [{ count: 5, category: 'travel', flagged: false }, 'decline', ['many']],
      [{ count: 1, category: 'grocery', flagged: false }, 'review', ['grocery']],
      [{ count: 1, category: 'travel', flagged: true }, 'review', ['flagged']],
      [{ count: 1, category: 'travel', flagged: false }, 'approve', []],
    ];
    for (const [i, [event, action, reasons]] of cases.entries()) {
      const r = await engine.evaluate({ id: `tx-${i}`, ...event });
      assert.equal(r.decision?.action, action, JSON.stringify(event));
      assert.deepEqual(r.decision?.reasons, reasons);
      assert.deepEqual(r.outputs, { cnt: { y: event['count'] }, cat: { y: event['category'] }, flag: { y: event['flagged'] } });
    }
  });

  test('an integer field out of the int32 range fails that step, not by wrapping around', async () => {
    const r = await engine.evaluate({ id: 'tx-big', count: 2 ** 31, category: 'travel', flagged: false });
    assert.equal(r.decision?.completeness['cnt'], 'error');
    assert.equal(r.decision?.action, 'review');
    assert.deepEqual(r.decision?.reasons, ['incomplete:cnt']);
  });
});

describe('string and int64 tensors cross the inference worker threads', () => {
  test('through the Piscina runner, a string and an int64 come back exact', async () => {
    const spec: TypedPipelineSpec = {
      fields: { category: 'string', count: 'integer' },
      steps: [
        { id: 'cat', model: 't_string', inputs: { x: 'event.category' } },
        { id: 'big', model: 't_int64', inputs: { x: 'event.count' } },
      ],
      runtime: { workers: 1, mode: 'inference' },
    };
    const r = await decide(spec, { id: 'tx-w', category: 'grocery', count: 2 ** 53 - 1 });
    assert.deepEqual(r.outputs, { cat: { y: 'grocery' }, big: { y: 2 ** 53 - 1 } });
  });
});

describe('the compiler checks every mapping against the declared element type', () => {
  const registry = new ModelRegistry(TYPES_REGISTRY);
  const compile = (spec: TypedPipelineSpec) => compilePipeline(typedPipeline(spec), registry, { baseDir: TYPES_DIR });
  const refuses = async (spec: TypedPipelineSpec, message: string) => {
    await assert.rejects(compile(spec), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'CONFIG_INVALID');
      assert.equal(err.message, message);
      return true;
    });
  };

  test('a number field feeding an integer input is refused with its config path', async () => {
    await refuses(
      { fields: { amount: 'number' }, steps: [{ id: 'i', model: 't_int32', inputs: { x: 'event.amount' } }] },
      "steps[0].inputs.x: event.amount is a number field, input 'x' is int32 (a number would be truncated; declare the field `integer` or give the model a float input)",
    );
  });

  test('a string field feeding a float input, and a number field feeding a string input, are refused', async () => {
    await refuses(
      { fields: { category: 'string' }, steps: [{ id: 'f', model: 't_float32', inputs: { x: 'event.category' } }] },
      "steps[0].inputs.x: event.category is a string field, input 'x' is float32",
    );
    await refuses(
      { fields: { amount: 'number' }, steps: [{ id: 's', model: 't_string', inputs: { x: 'event.amount' } }] },
      "steps[0].inputs.x: event.amount is a number field, input 'x' is string",
    );
  });

  test('a feature set feeding an integer input, and a float output feeding one, are refused', async () => {
    await refuses(
      { fields: { amount: 'integer' }, steps: [{ id: 'u', model: 't_uint8', inputs: { x: 'features.dense' } }] },
      "steps[0].inputs.x: features.dense is a float feature set, input 'x' is uint8 (a number would be truncated; declare the field `integer` or give the model a float input)",
    );
    await refuses(
      {
        fields: { amount: 'number' },
        steps: [
          { id: 'd', model: 'amount_delta', inputs: { x: 'event.amount' } },
          { id: 'i', model: 't_int64', inputs: { x: 'steps.d.y' } },
        ],
      },
      "steps[1].inputs.x: steps.d.y is a float64 output, input 'x' is int64 (a number would be truncated; declare the field `integer` or give the model a float input)",
    );
  });

  test('lossless mappings compile: integer → int and float, boolean → bool and float, string → string, int output → float', async () => {
    const p = await compile({
      fields: { count: 'integer', flagged: 'boolean', category: 'string' },
      steps: [
        { id: 'a', model: 't_int16', inputs: { x: 'event.count' } },
        { id: 'b', model: 't_float64', inputs: { x: 'event.count' } },
        { id: 'c', model: 't_bool', inputs: { x: 'event.flagged' } },
        { id: 'd', model: 't_float32', inputs: { x: 'event.flagged' } },
        { id: 'e', model: 't_string', inputs: { x: 'event.category' } },
        { id: 'f', model: 't_float16', inputs: { x: 'steps.a.y' } },
      ],
    });
    assert.deepEqual(p.steps.map((s) => `${s.id}:${s.inputs[0]?.spec.type}`), ['a:int16', 'b:float64', 'c:bool', 'd:float32', 'e:string', 'f:float16']);
  });
});

describe('registering models of every element type', () => {
  test('the registry reads each signature from the model, smoke-runs it, and writes the same manifest types', async () => {
    const root = await mkdtemp(join(tmpdir(), 'verdict-types-'));
    try {
      const registry = new ModelRegistry(root);
      for (const type of ELEMENT_TYPES) {
        const model = await registry.register(`t_${type}`, join(TYPES_REGISTRY, `t_${type}`, '1', 'model.onnx'));
        const fixture = JSON.parse(await readFile(join(TYPES_REGISTRY, `t_${type}`, '1', 'manifest.json'), 'utf8')) as { inputs: unknown; outputs: unknown };
        assert.deepEqual({ inputs: model.manifest.inputs, outputs: model.manifest.outputs }, { inputs: fixture.inputs, outputs: fixture.outputs }, type);
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
