import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { describe, test } from 'node:test';
import { DecisionActor } from '../pipeline/decide/decision-actor.js';
import { compileExpression } from '../config/rules.js';
import type { CompiledDecision } from '../config/compiled.js';
import type { PipelineFile } from '../config/pipeline-schema.js';
import { createMetrics, type Metrics } from '../core/metrics.js';
import { Engine } from '../runtime/engine.js';
import type { JoinResult } from '../pipeline/join/types.js';
import { relaxedTimeouts, samplePipeline, samplePipelinePath, transactions } from './helpers/pipelines.js';

/** Rule 0 reads the optional `device.id`: for an event without it, CEL fails with "No such key: id". */
const BLOCKED_DEVICE = { when: "event.device.id == 'blocked'", action: 'decline', reason: 'blocked_device' };
const LARGE = { when: 'event.amount > 10000.0', action: 'review', reason: 'large_amount' };

function withRuleError(onRuleError: 'skip' | 'incomplete') {
  return (f: PipelineFile): PipelineFile => relaxedTimeouts({
    ...f,
    decision: {
      ...f.decision,
      rules: [BLOCKED_DEVICE, LARGE],
      default: 'approve',
      onRuleError,
      onIncomplete: { policy: 'fail-closed', action: 'review' },
    },
    runtime: { workers: 0, mode: 'inference', intraOpThreads: 1 },
  });
}

const base = transactions(1, 3)[0]!.event;
const { id: _deviceId, ...deviceWithoutId } = base['device'] as Record<string, unknown>;
const noDeviceId = { ...base, id: 'no-device-id', amount: 42.5, device: deviceWithoutId };

async function ruleErrorCount(metrics: Metrics, rule: string): Promise<number> {
  return (await metrics.ruleErrors.get()).values.find((v) => v.labels['rule'] === rule)?.value ?? 0;
}

async function incompleteCount(metrics: Metrics): Promise<number> {
  return (await metrics.incompleteJoins.get()).values[0]?.value ?? 0;
}

describe('a decision rule that fails at run time (decision.onRuleError)', () => {
  for (const [setting, want] of [
    ['skip', { action: 'approve', policy: 'rules' }],
    ['incomplete', { action: 'review', policy: 'fail-closed' }],
  ] as const) {
    test(`onRuleError ${setting}: ${want.action} by ${want.policy}, named in the reasons and counted per rule`, async () => {
      const engine = await Engine.create(await samplePipeline(withRuleError(setting)), {
        baseDir: dirname(samplePipelinePath), metrics: createMetrics(),
      });
      try {
        const d = (await engine.evaluate(noDeviceId)).decision;
        assert.ok(d !== null);
        assert.equal(d.action, want.action);
        assert.equal(d.policy, want.policy);
        assert.equal(d.complete, true, 'the join itself was complete');
        assert.deepEqual(d.reasons, ['rule_error:decision.rules[0]']);
        assert.deepEqual(d.ruleErrors, ['decision.rules[0].when: No such key: id']);
        assert.equal(await ruleErrorCount(engine.metrics, 'decision.rules[0]'), 1);
        assert.equal(await ruleErrorCount(engine.metrics, 'decision.rules[1]'), 0);
        assert.equal(await incompleteCount(engine.metrics), 0, 'a rule error is not an incomplete join');
        // The same event with its device id evaluates every rule: no error, no count.
        const clean = (await engine.evaluate({ ...noDeviceId, id: 'with-device-id', device: base['device'] })).decision;
        assert.deepEqual([clean?.action, clean?.policy, clean?.reasons, clean?.ruleErrors], ['approve', 'rules', [], undefined]);
        assert.equal(await ruleErrorCount(engine.metrics, 'decision.rules[0]'), 1);
      } finally {
        await engine.close();
      }
    });
  }

  const join: JoinResult = {
    eventId: 'e1', complete: true, openedAt: 0, closedAt: 1, errors: {}, models: { gbt: 'fraud_gbt@3' },
    completeness: { gbt: 'ok' }, outputs: { gbt: { fraud_probability: 0.2 } },
  };
  const decide = (decision: CompiledDecision, metrics = createMetrics()) =>
    new DecisionActor({ pipeline: 'p', decision, metrics }).decide({ event: { amount: 20000 }, eventId: 'e1', key: 'k', join });

  test('onRuleError incomplete with the fallback policy: the fallback rules decide', () => {
    const d = decide({
      score: null, rules: [BLOCKED_DEVICE, LARGE], default: 'approve', onRuleError: 'incomplete',
      onIncomplete: { policy: 'fallback', rules: [{ when: 'event.amount > 5000.0', action: 'decline', reason: 'fallback_large' }], default: 'approve' },
    });
    assert.deepEqual([d.action, d.policy, d.reasons], ['decline', 'fallback', ['fallback_large', 'rule_error:decision.rules[0]']]);
  });

  test('onRuleError incomplete with fail-open: the normal rules still decide, marked fail-open', () => {
    const d = decide({ score: null, rules: [BLOCKED_DEVICE, LARGE], default: 'approve', onRuleError: 'incomplete', onIncomplete: { policy: 'fail-open' } });
    assert.deepEqual([d.action, d.policy, d.reasons], ['review', 'fail-open', ['large_amount', 'rule_error:decision.rules[0]']]);
  });

  test('an int division by zero in a rule is a rule error too; the fallback rule that fails is counted by its own path', async () => {
    const metrics = createMetrics();
    const d = decide({
      score: 'steps.gbt.fraud_probability', rules: [{ when: 'int(event.amount) / 0 > 1', action: 'decline', reason: 'never' }], default: 'approve',
      onRuleError: 'incomplete',
      onIncomplete: { policy: 'fallback', rules: [{ when: 'event.missing > 1.0', action: 'decline', reason: 'x' }], default: 'review' },
    }, metrics);
    assert.deepEqual([d.action, d.policy, d.score], ['review', 'fallback', 0.2]);
    assert.deepEqual(d.reasons, ['rule_error:decision.rules[0]', 'rule_error:decision.onIncomplete.rules[0]']);
    assert.deepEqual(d.ruleErrors, ['decision.rules[0].when: division by zero', 'decision.onIncomplete.rules[0].when: No such key: missing']);
    assert.equal(await ruleErrorCount(metrics, 'decision.rules[0]'), 1);
    assert.equal(await ruleErrorCount(metrics, 'decision.onIncomplete.rules[0]'), 1);
  });
});

describe('CEL numbers in cel-js 8, as the README states them', () => {
  const run = (source: string, event: Record<string, unknown>): unknown =>
    compileExpression(source, 'x', 'any')({ event, steps: {}, completeness: {} });

  test('a double event field compares with an int literal as with a double literal, = included', () => {
    for (const [amount, want] of [[500, [false, false, true]], [500.5, [true, true, false]]] as const) {
      assert.deepEqual([run('event.amount > 500', { amount }), run('event.amount > 500.0', { amount }), run('event.amount == 500', { amount })], want);
    }
  });

  test('== between an int and a double literal is refused at load; mixed arithmetic works', () => {
    assert.throws(() => compileExpression('1.5 == 1', 'decision.rules[0].when'), /^ConfigError: decision\.rules\[0\]\.when: CEL type error: no such overload: double == int/);
    assert.equal(run('event.amount * 2 > 999', { amount: 500 }), true);
  });
});
