import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { compilePipeline } from '../config/compile-pipeline.js';
import { ConfigError } from '../core/errors.js';
import { parsePipeline } from '../config/load.js';
import type { PipelineFile } from '../config/pipeline-schema.js';
import { ModelRegistry } from '../models/registry.js';
import { samplePipeline, samplePipelinePath } from './helpers/pipelines.js';

const baseDir = dirname(samplePipelinePath);
const registry = new ModelRegistry(resolve(baseDir, '../../models/registry'));

async function compileEdited(edit: (f: PipelineFile) => PipelineFile) {
  return compilePipeline(await samplePipeline(edit), registry, { baseDir });
}

async function rejectsWith(edit: (f: PipelineFile) => PipelineFile, pattern: RegExp): Promise<void> {
  await assert.rejects(compileEdited(edit), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.match(err.message, pattern);
    return true;
  });
}

describe('pipeline compilation', () => {
  test('the sample pipeline compiles, with the cascade step ordered after its dependency', async () => {
    const p = await compileEdited((f) => f);
    assert.deepEqual(p.steps.map((s) => s.id), ['gbt', 'anomaly', 'mlp']);
    assert.deepEqual(p.steps.find((s) => s.id === 'mlp')?.dependsOn, ['gbt']);
    assert.equal(p.steps[0]?.model.ref, 'fraud_gbt@3');
    assert.equal(p.steps[0]?.inputs[0]?.width, 22);
  });

  test('an unknown model is refused, naming the step', async () => {
    await rejectsWith((f) => ({ ...f, steps: f.steps.map((s, i) => (i === 1 ? { ...s, model: 'nope@production' } : s)) }), /steps\[1\]\.model: MODEL_NOT_FOUND/);
  });

  test('a dependency cycle is refused and spelled out', async () => {
    await rejectsWith(
      (f) => ({
        ...f,
        steps: f.steps.map((s) => (s.id === 'gbt' ? { ...s, when: 'steps.mlp.fraud_probability > 0.1' } : s)),
      }),
      /dependency cycle (gbt → mlp → gbt|mlp → gbt → mlp)/,
    );
  });

  test('a missing model input is refused', async () => {
    await rejectsWith((f) => ({ ...f, steps: f.steps.map((s, i) => (i === 0 ? { ...s, inputs: {} } : s)) }), /steps\[0\]\.inputs\.features: missing/);
  });

  test('a shape mismatch is refused with both widths', async () => {
    await rejectsWith(
      (f) => ({ ...f, steps: f.steps.map((s, i) => (i === 0 ? { ...s, inputs: { features: ['features.dense', 'event.amount'] } } : s)) }),
      /steps\[0\]\.inputs\.features: shape mismatch: .* expects 22 .* gives 23/,
    );
  });

  test('a reference to an unknown step output is refused', async () => {
    await rejectsWith((f) => ({ ...f, steps: f.steps.map((s, i) => (i === 2 ? { ...s, when: 'steps.ghost.x > 1.0' } : s)) }), /steps\[2\]\.when: refers to unknown step "ghost"/);
  });

  test('invalid CEL is refused with its config path', async () => {
    await rejectsWith(
      (f) => ({ ...f, decision: { ...f.decision, rules: [{ when: 'steps.gbt.fraud_probability >', action: 'decline', reason: 'x' }] } }),
      /decision\.rules\[0\]\.when: not a valid CEL expression/,
    );
  });

  test('schema errors in the YAML name the field path', () => {
    assert.throws(() => parsePipeline('pipeline: x\nschemas: {}\ninput: { schema: s, features: {} }\nsteps: []\ndecision: {}\n', 'x.yaml'), /steps: .*|steps/);
    assert.throws(() => parsePipeline('pipeline: [', 'bad.yaml'), /bad\.yaml: not valid YAML/);
  });
});

describe('pipeline file keys', () => {
  const text = readFileSync(samplePipelinePath, 'utf8');
  const refused = (edited: string, pattern: RegExp): void => {
    assert.notEqual(edited, text, 'the edit applied');
    assert.throws(() => parsePipeline(edited, 'edited.yaml'), (err: Error & { code?: string }) => {
      assert.equal(err.code, ConfigError.code);
      assert.match(err.message, pattern);
      return true;
    });
  };

  test('a misspelt key is refused with its path at every level, never dropped silently', () => {
    refused(text.replace('    # shadow: fraud_gbt@4', '    shaddow: fraud_gbt@4'), /steps\[0\]: Unrecognized key: "shaddow"/);
    refused(text.replace('maxBatchSize: 64', 'maxBatchsize: 64'), /models\.batching.*maxBatchsize/s);
    refused(text.replace('  deadlineMs: 100', '  deadlineMS: 100'), /join.*deadlineMS/s);
    refused(text.replace('  onIncomplete:\n    policy: fallback', '  onIncomplete:\n    polcy: x\n    policy: fallback'), /decision\.onIncomplete: Unrecognized key: "polcy"/);
    refused(text.replace('{ when: "steps.gbt.fraud_probability > 0.9", action: decline, reason: high_gbt }', '{ when: "steps.gbt.fraud_probability > 0.9", action: decline, reason: high_gbt, priority: 1 }'), /decision\.rules\[0\]: Unrecognized key: "priority"/);
    refused(text.replace('      amount: { type: number, min: 0 }', '      amount: { type: number, minimum: 0 }'), /schemas\.transaction\.fields\.amount.*minimum/s);
    refused(text.replace('  intraOpThreads: 1', '  intraOpThread: 1'), /runtime.*intraOpThread/s);
  });
});
