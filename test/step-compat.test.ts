import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { stepIncompatibility } from '../config/step-compat.js';
import type { ResolvedModel, TensorSpec } from '../models/types.js';

function model(ref: string, inputs: TensorSpec[], outputs: TensorSpec[]): ResolvedModel {
  const [name = '', version = '1'] = ref.split('@');
  return {
    name, version: Number(version), ref, path: `/nowhere/${name}/${version}/model.onnx`,
    manifest: { name, version: Number(version), description: '', createdAt: '2026-01-01T00:00:00Z', sha256: '0'.repeat(64), inputs, outputs, metrics: {} },
  };
}

const features = (n: number, type: TensorSpec['type'] = 'float32'): TensorSpec => ({ name: 'features', type, shape: ['N', n] });
const prob = (type: TensorSpec['type'] = 'float32', shape: TensorSpec['shape'] = ['N', 1]): TensorSpec => ({ name: 'fraud_probability', type, shape });
const compiled = { id: 'gbt', model: model('fraud_gbt@1', [features(16)], [prob()]) };

describe('stepIncompatibility: whether a candidate can stand in for a step\'s compiled version', () => {
  test('the same signature is compatible; a differently written batch dimension too', () => {
    assert.equal(stepIncompatibility(compiled, model('fraud_gbt@2', [features(16)], [prob()])), null);
    assert.equal(stepIncompatibility(compiled, model('other@3', [{ name: 'features', type: 'float32', shape: ['batch', 16] }], [prob('float32', ['batch', 1])])), null);
  });

  test('an extra output is compatible: nothing reads it', () => {
    assert.equal(stepIncompatibility(compiled, model('fraud_gbt@2', [features(16)], [prob(), { name: 'logit', type: 'float32', shape: ['N', 1] }])), null);
  });

  test('the same values per row in another layout is compatible (the row is fed flat)', () => {
    assert.equal(stepIncompatibility(compiled, model('fraud_gbt@2', [{ name: 'features', type: 'float32', shape: ['N', 4, 4] }], [prob()])), null);
  });

  test('a missing input is refused, naming both refs and the input', () => {
    assert.equal(
      stepIncompatibility(compiled, model('fraud_gbt@2', [{ name: 'x', type: 'float32', shape: ['N', 16] }], [prob()])),
      'fraud_gbt@2 has no input "features", which step "gbt" was compiled with fraud_gbt@1 feeds',
    );
  });

  test('an input of another width or element type is refused with both shapes', () => {
    assert.match(stepIncompatibility(compiled, model('fraud_gbt@2', [features(17)], [prob()])) ?? '', /input "features" is float32\[N, 17\], but step "gbt" was compiled with fraud_gbt@1 feeds float32\[N, 16\]/);
    assert.match(stepIncompatibility(compiled, model('fraud_gbt@2', [features(16, 'float64')], [prob()])) ?? '', /input "features" is float64\[N, 16\]/);
  });

  test('an extra input is refused: the step does not feed it', () => {
    assert.match(
      stepIncompatibility(compiled, model('fraud_gbt@2', [features(16), { name: 'extra', type: 'float32', shape: ['N', 1] }], [prob()])) ?? '',
      /needs input "extra", which step "gbt" was compiled with fraud_gbt@1 does not feed/,
    );
  });

  test('a missing output, or one of another type or width, is refused', () => {
    assert.match(stepIncompatibility(compiled, model('txn_autoencoder@1', [features(16)], [{ name: 'score', type: 'float32', shape: ['N', 1] }])) ?? '', /txn_autoencoder@1 has no output "fraud_probability"/);
    assert.match(stepIncompatibility(compiled, model('fraud_gbt@2', [features(16)], [prob('float64')])) ?? '', /output "fraud_probability" is float64\[N, 1\], but .* gives float32\[N, 1\]/);
    assert.match(stepIncompatibility(compiled, model('fraud_gbt@2', [features(16)], [prob('float32', ['N', 2])])) ?? '', /output "fraud_probability" is float32\[N, 2\]/);
  });

  test('a dynamic non-batch dimension is refused (such a model cannot be fed)', () => {
    assert.match(stepIncompatibility(compiled, model('fraud_gbt@2', [{ name: 'features', type: 'float32', shape: ['N', 'M'] }], [prob()])) ?? '', /input "features" is float32\[N, M\]/);
  });
});
