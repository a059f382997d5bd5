import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { describe, test } from 'node:test';
import type { JoinMode } from '../config/compiled.js';
import type { PipelineFile } from '../config/pipeline-schema.js';
import { createMetrics, type Metrics } from '../core/metrics.js';
import { Engine } from '../runtime/engine.js';
import { relaxedTimeouts, samplePipeline, samplePipelinePath, transactions } from './helpers/pipelines.js';

/**
 * Two real models, each behind a `when`: gbt runs only for large amounts; anomaly runs only for an
 * impossible IP risk or a blocked device, and its condition fails (no such key) for an event without `device.id`.
 */
function twoConditionalSteps(mode: JoinMode) {
  return (f: PipelineFile): PipelineFile => relaxedTimeouts({
    ...f,
    steps: [
      { id: 'gbt', model: 'fraud_gbt@production', inputs: { features: 'features.dense' }, when: 'event.amount > 1000.0' },
      { id: 'anomaly', model: 'txn_autoencoder@production', inputs: { features: 'features.dense' }, when: "event.ip_risk > 2.0 || event.device.id == 'blocked'" },
    ],
    join: { mode, deadlineMs: 5_000 },
    decision: {
      rules: [{ when: 'has(steps.gbt) && steps.gbt.fraud_probability > 0.99', action: 'decline', reason: 'high_gbt' }],
      default: 'approve',
      onRuleError: 'skip',
      onIncomplete: { policy: 'fail-closed', action: 'review' },
    },
    runtime: { workers: 0, mode: 'inference', intraOpThreads: 1 },
  });
}

const base = transactions(1, 3)[0]!.event;
const allSkipped = { ...base, id: 'all-skipped', amount: 42.5 };
const someSkipped = { ...base, id: 'some-skipped', amount: 1500 };
const { id: _deviceId, ...deviceWithoutId } = base['device'] as Record<string, unknown>;
const oneErrored = { ...base, id: 'one-errored', amount: 1500, device: deviceWithoutId };

async function incompleteCount(metrics: Metrics): Promise<number> {
  return (await metrics.incompleteJoins.get()).values.find((v) => v.labels['pipeline'] === 'card-risk')?.value ?? 0;
}

interface Expected {
  readonly action: string;
  readonly policy: string;
  readonly complete: boolean;
  readonly reasons: readonly string[];
  readonly completeness: Readonly<Record<string, string>>;
  readonly incompleteSoFar: number;
}

async function check(engine: Engine, event: Record<string, unknown>, want: Expected): Promise<void> {
  const r = await engine.evaluate(event);
  const d = r.decision;
  assert.ok(d !== null, `${String(event['id'])} was dead-lettered: ${r.outcome.kind === 'dead-letter' ? r.outcome.error.message : ''}`);
  assert.deepEqual(
    { action: d.action, policy: d.policy, complete: d.complete, reasons: d.reasons, completeness: d.completeness },
    { action: want.action, policy: want.policy, complete: want.complete, reasons: want.reasons, completeness: want.completeness },
    String(event['id']),
  );
  assert.equal(await incompleteCount(engine.metrics), want.incompleteSoFar, `incomplete joins after ${String(event['id'])}`);
}

describe('steps skipped by design, through real models in every join mode', () => {
  for (const mode of ['all', 'any', 'partial'] as const) {
    test(`mode ${mode}: all skipped and some skipped are complete; an errored step is incomplete only where the mode says`, async () => {
      const engine = await Engine.create(await samplePipeline(twoConditionalSteps(mode)), {
        baseDir: dirname(samplePipelinePath), metrics: createMetrics(),
      });
      try {
        await check(engine, allSkipped, {
          action: 'approve', policy: 'rules', complete: true, reasons: [],
          completeness: { gbt: 'skipped', anomaly: 'skipped' }, incompleteSoFar: 0,
        });
        await check(engine, someSkipped, {
          action: 'approve', policy: 'rules', complete: true, reasons: [],
          completeness: { gbt: 'ok', anomaly: 'skipped' }, incompleteSoFar: 0,
        });
        // A failed step leaves `all` and `partial` incomplete (the incomplete policy decides); `any` decides
        // on the first ok step.
        await check(engine, oneErrored, mode !== 'any'
          ? { action: 'review', policy: 'fail-closed', complete: false, reasons: ['incomplete:anomaly'], completeness: { gbt: 'ok', anomaly: 'error' }, incompleteSoFar: 1 }
          : { action: 'approve', policy: 'rules', complete: true, reasons: [], completeness: { gbt: 'ok', anomaly: 'error' }, incompleteSoFar: 0 });
      } finally {
        await engine.close();
      }
    });
  }
});
