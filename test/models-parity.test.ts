/**
 * The committed sample models, run by onnxruntime-node, reproduce what Python computed when it trained them
 * (fixtures in test/fixtures/parity, written by models/training/train.py), their bytes match their manifests,
 * and they rank fraud above legitimate traffic.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURES = join(ROOT, 'test/fixtures/parity');

interface ParityFixture {
  readonly model: string;
  readonly version: number;
  readonly input: string;
  readonly output: string;
  readonly tolerance: number;
  readonly rows: readonly { readonly features: readonly number[]; readonly label: 0 | 1; readonly expected: number }[];
}

interface Manifest {
  readonly sha256: string;
  readonly inputs: readonly { readonly name: string; readonly type: string; readonly shape: readonly (string | number)[] }[];
  readonly outputs: readonly { readonly name: string; readonly type: string; readonly shape: readonly (string | number)[] }[];
}

const fixtures = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(FIXTURES, f), 'utf8')) as ParityFixture);

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

void describe('committed models', () => {
  void test('every registry model version has a parity fixture', () => {
    const covered = new Set(fixtures.map((f) => `${f.model}@${f.version}`));
    const registry = join(ROOT, 'models/registry');
    for (const name of readdirSync(registry)) {
      for (const version of readdirSync(join(registry, name)).filter((v) => /^\d+$/.test(v))) {
        assert.ok(covered.has(`${name}@${version}`), `no parity fixture for ${name}@${version}`);
      }
    }
  });

  for (const fx of fixtures) {
    void test(`${fx.model}@${fx.version} matches Python's outputs and scores fraud above legitimate rows`, async () => {
      const folder = join(ROOT, 'models/registry', fx.model, String(fx.version));
      const bytes = readFileSync(join(folder, 'model.onnx'));
      const manifest = JSON.parse(readFileSync(join(folder, 'manifest.json'), 'utf8')) as Manifest;
      assert.equal(createHash('sha256').update(bytes).digest('hex'), manifest.sha256, 'model bytes match the manifest');

      const width = fx.rows[0]?.features.length ?? 0;
      assert.deepEqual(manifest.inputs, [{ name: fx.input, type: 'float32', shape: ['N', width] }]);
      assert.deepEqual(manifest.outputs, [{ name: fx.output, type: 'float32', shape: ['N', 1] }]);

      const session = await ort.InferenceSession.create(bytes);
      try {
        const input = new ort.Tensor('float32', Float32Array.from(fx.rows.flatMap((r) => r.features)), [fx.rows.length, width]);
        const result = await session.run({ [fx.input]: input });
        const out = result[fx.output];
        assert.ok(out !== undefined, `output ${fx.output} is present`);
        assert.deepEqual(out.dims, [fx.rows.length, 1]);
        const got = Array.from(out.data as Float32Array);
        fx.rows.forEach((row, i) => {
          const diff = Math.abs((got[i] ?? Number.NaN) - row.expected);
          assert.ok(diff < fx.tolerance, `row ${i}: onnxruntime ${got[i]} vs python ${row.expected}`);
        });
        const fraud = got.filter((_, i) => fx.rows[i]?.label === 1);
        const legit = got.filter((_, i) => fx.rows[i]?.label === 0);
        assert.ok(fraud.length > 0 && legit.length > 0);
        assert.ok(mean(fraud) > mean(legit), `fraud mean ${mean(fraud)} <= legit mean ${mean(legit)}`);
      } finally {
        await session.release();
      }
    });
  }
});
