import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DecisionActor, type DecisionInput } from '../pipeline/decide/decision-actor.js';
import type { CompiledDecision } from '../config/compiled.js';
import { createMetrics } from '../core/metrics.js';
import type { JoinResult, StepStatus } from '../pipeline/join/types.js';
import { samplePipeline } from './helpers/pipelines.js';

const RULES = [
  { when: 'steps.gbt.fraud_probability > 0.9', action: 'decline', reason: 'high_gbt' },
  { when: 'has(steps.mlp) && steps.mlp.fraud_probability > 0.5', action: 'review', reason: 'mlp_suspicious' },
  { when: 'event.amount > 500.0', action: 'review', reason: 'large_amount' },
];

function decision(onIncomplete: CompiledDecision['onIncomplete'] = { policy: 'fail-open' }, score: string | null = 'steps.gbt.fraud_probability'): CompiledDecision {
  return { score, rules: RULES, default: 'approve', onRuleError: 'skip', onIncomplete };
}

function input(outputs: Record<string, number>, amount = 10, complete = true): DecisionInput {
  const completeness: Record<string, StepStatus> = { gbt: 'timeout', mlp: 'skipped' };
  for (const k of Object.keys(outputs)) completeness[k] = 'ok';
  const join: JoinResult = {
    eventId: 'e1', complete, openedAt: 0, closedAt: 3, errors: {}, completeness,
    outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, { fraud_probability: v }])),
    models: Object.fromEntries(Object.keys(outputs).map((k) => [k, `${k}_model@1`])),
  };
  return { event: { amount }, eventId: 'e1', key: 'card-1', join, timings: { ingest: 0.1 } };
}

describe('decision actor', () => {
  test('the first rule that fires sets the action; every fired rule is a reason', () => {
    const actor = new DecisionActor({ pipeline: 'p', decision: decision() });
    const d = actor.decide(input({ gbt: 0.95, mlp: 0.7 }, 900));
    assert.equal(d.action, 'decline');
    assert.deepEqual(d.reasons, ['high_gbt', 'mlp_suspicious', 'large_amount']);
    assert.equal(d.score, 0.95);
    assert.deepEqual(d.models, { gbt: 'gbt_model@1', mlp: 'mlp_model@1' });
    assert.equal(d.policy, 'rules');
    assert.equal(d.latencyMs['ingest'], 0.1);
  });

  test('no rule fires: the default action', () => {
    const actor = new DecisionActor({ pipeline: 'p', decision: decision() });
    const d = actor.decide(input({ gbt: 0.1 }));
    assert.equal(d.action, 'approve');
    assert.deepEqual(d.reasons, []);
    assert.equal(d.ruleErrors, undefined, 'has() guards the cascade step');
  });

  test('a rule that fails at run time counts as not fired and is named in the reasons, without crashing', () => {
    const metrics = createMetrics();
    const actor = new DecisionActor({ pipeline: 'p', decision: decision(), metrics });
    // gbt missing: `steps.gbt.fraud_probability` has no such key.
    const d = actor.decide(input({ mlp: 0.7 }, 10, true));
    assert.equal(d.action, 'review');
    assert.equal(d.policy, 'rules');
    assert.deepEqual(d.reasons, ['mlp_suspicious', 'rule_error:decision.rules[0]']);
    assert.equal(d.ruleErrors?.length, 2, 'the gbt rule and the score');
    assert.match(d.ruleErrors?.[0] ?? '', /^decision\.rules\[0\]\.when: /);
    assert.equal(d.score, null);
  });

  test('fail-open applies the normal rules to an incomplete join', () => {
    const actor = new DecisionActor({ pipeline: 'p', decision: decision({ policy: 'fail-open' }) });
    const d = actor.decide(input({ gbt: 0.95 }, 10, false));
    assert.equal(d.policy, 'fail-open');
    assert.equal(d.action, 'decline');
  });

  test('fail-closed returns its action and names the steps that did not answer', () => {
    const actor = new DecisionActor({ pipeline: 'p', decision: decision({ policy: 'fail-closed', action: 'review' }) });
    const d = actor.decide(input({}, 10, false));
    assert.equal(d.policy, 'fail-closed');
    assert.equal(d.action, 'review');
    assert.deepEqual(d.reasons, ['incomplete:gbt']);
  });

  test('fallback evaluates its own rule set and default', () => {
    const fallback: CompiledDecision['onIncomplete'] = {
      policy: 'fallback',
      rules: [{ when: 'event.amount > 1000.0', action: 'review', reason: 'fallback_large' }],
      default: 'approve',
    };
    const actor = new DecisionActor({ pipeline: 'p', decision: decision(fallback) });
    assert.deepEqual([actor.decide(input({}, 5000, false)).action, actor.decide(input({}, 5000, false)).reasons], ['review', ['fallback_large']]);
    assert.equal(actor.decide(input({}, 50, false)).action, 'approve');
    assert.equal(actor.decide(input({}, 50, false)).policy, 'fallback');
  });

  test('a CEL syntax error is refused at load, naming the config path', () => {
    assert.throws(
      () => new DecisionActor({ pipeline: 'p', decision: { ...decision(), rules: [RULES[0]!, { when: 'event.amount >', action: 'x', reason: 'y' }] } }),
      (err: Error & { code?: string }) => err.code === 'CONFIG_INVALID' && /decision\.rules\[1\]\.when/.test(err.message),
    );
  });

  test('rules are CEL, never JavaScript: code-like strings are refused at load', () => {
    for (const when of ['process.exit(1)', "constructor.constructor('return process')().exit(1)", 'require("fs")', 'this.constructor']) {
      assert.throws(
        () => new DecisionActor({ pipeline: 'p', decision: { ...decision(), rules: [{ when, action: 'x', reason: 'y' }] } }),
        (err: Error & { code?: string }) => err.code === 'CONFIG_INVALID' && err.message.startsWith('decision.rules[0].when: '),
        when,
      );
    }
  });

  test('JS object internals are not reachable from a rule: they are missing keys, not prototype lookups', () => {
    const rules = [
      { when: 'event.constructor.name == "Object"', action: 'x', reason: 'ctor' },
      { when: 'event.__proto__ != null', action: 'x', reason: 'proto' },
    ];
    const actor = new DecisionActor({ pipeline: 'p', decision: { ...decision(), rules } });
    const d = actor.decide(input({ gbt: 0.1 }));
    assert.equal(d.action, 'approve', 'no rule fired');
    assert.deepEqual(d.ruleErrors, ['decision.rules[0].when: No such key: constructor', 'decision.rules[1].when: No such key: __proto__']);
  });

  test('a typo in a variable name or a non-boolean rule is refused at load with its path', () => {
    const withRule = (when: string) => () => new DecisionActor({ pipeline: 'p', decision: { ...decision(), rules: [RULES[0]!, RULES[1]!, { when, action: 'x', reason: 'y' }] } });
    assert.throws(withRule('stpes.gbt.fraud_probability > 0.5'), /^ConfigError: decision\.rules\[2\]\.when: .*Unknown variable: stpes/);
    assert.throws(withRule('"decline"'), /decision\.rules\[2\]\.when: must be a bool expression, but is string/);
    assert.throws(
      () => new DecisionActor({ pipeline: 'p', decision: { ...decision(), score: '"high"' } }),
      /decision\.score: must be a number expression/,
    );
    assert.throws(
      () => new DecisionActor({ pipeline: 'p', decision: decision({ policy: 'fallback', rules: [{ when: 'event.amount >>', action: 'x', reason: 'y' }], default: 'approve' }) }),
      /decision\.onIncomplete\.rules\[0\]\.when: not a valid CEL expression/,
    );
  });

  test('event and model numbers are doubles: int and double literals both work in comparisons and arithmetic', () => {
    const rules = [
      { when: 'event.amount > 500', action: 'review', reason: 'int_literal' },
      { when: 'event.amount > 500.0', action: 'review', reason: 'double_literal' },
      { when: 'event.amount == 900', action: 'review', reason: 'int_equality' },
      { when: 'steps.gbt.fraud_probability * 100 > 90', action: 'review', reason: 'mixed_arithmetic' },
    ];
    const actor = new DecisionActor({ pipeline: 'p', decision: { ...decision(), rules, score: 'steps.gbt.fraud_probability * 100 + 1' } });
    // 900 is an integer-valued JS number, as a JSON decoder produces it.
    const d = actor.decide(input({ gbt: 0.95 }, 900));
    assert.deepEqual(d.reasons, ['int_literal', 'double_literal', 'int_equality', 'mixed_arithmetic']);
    assert.equal(d.ruleErrors, undefined);
    assert.equal(d.score, 96);
  });

  test('without a score expression the score is the first probability output, in step order', () => {
    const actor = new DecisionActor({ pipeline: 'p', decision: decision({ policy: 'fail-open' }, null) });
    const join = input({ gbt: 0.3 }).join;
    const outputs = { anomaly: { score: 4.2 }, gbt: { fraud_probability: 0.3 }, mlp: { fraud_probability: 0.8 } };
    assert.equal(actor.decide({ ...input({}), join: { ...join, outputs } }).score, 0.3);
    assert.equal(actor.decide({ ...input({}), join: { ...join, outputs: { anomaly: { score: 4.2 } } } }).score, null);
  });

  test('the sample pipeline decision config compiles and decides as written', async () => {
    const file = await samplePipeline();
    const d = file.decision;
    const actor = new DecisionActor({ pipeline: file.pipeline, decision: { score: d.score ?? null, rules: d.rules, default: d.default, onRuleError: d.onRuleError, onIncomplete: d.onIncomplete } });
    const join = (outputs: Record<string, Record<string, number>>, complete = true): JoinResult => ({
      eventId: 'e', outputs, models: {}, errors: {}, complete, openedAt: 0, closedAt: 1,
      completeness: Object.fromEntries(['gbt', 'anomaly', 'mlp'].map((s) => [s, s in outputs ? 'ok' : 'skipped'])),
    });
    // The sample's rules also read the card's state and where the event happened: a card at home, seen once.
    const state = { txn_count_10m: 1, txn_count_1h: 1, txn_count_24h: 1, amount_sum_1h: 0, amount_mean_7d: null, merchants_24h: 1, countries_24h: 1, last_country: null, since_last_s: null };
    const decide = (outputs: Record<string, Record<string, number>>, amount: number, complete = true) =>
      actor.decide({ event: { amount, country: 'FR', card_country: 'FR', device: { is_new: false } }, eventId: 'e', key: 'k', state, join: join(outputs, complete) });
    const anomalous = decide({ gbt: { fraud_probability: 0.2 }, anomaly: { score: 3.5 } }, 900);
    assert.deepEqual([anomalous.action, anomalous.reasons, anomalous.ruleErrors], ['review', ['anomalous_amount'], undefined]);
    assert.equal(anomalous.score, 0.2);
    const agree = decide({ gbt: { fraud_probability: 0.6 }, anomaly: { score: 0.1 }, mlp: { fraud_probability: 0.9 } }, 20);
    assert.deepEqual([agree.action, agree.reasons], ['decline', ['gbt_and_mlp_agree', 'mlp_suspicious']]);
    assert.equal(agree.score, 0.75);
    const fallback = decide({}, 2000, false);
    // A burst of tiny amounts on the card: card testing, whatever the models say.
    const burst = actor.decide({ event: { amount: 2.5, country: 'FR', card_country: 'FR', device: { is_new: true } }, eventId: 'e', key: 'k', state: { ...state, txn_count_10m: 7 }, join: join({ gbt: { fraud_probability: 0.2 }, anomaly: { score: 0.1 } }) });
    assert.deepEqual([burst.action, burst.reasons, burst.ruleErrors], ['decline', ['card_testing_burst', 'card_testing_suspected'], undefined]);
    assert.deepEqual([fallback.policy, fallback.action, fallback.reasons], ['fallback', 'review', ['fallback_large_amount']]);
  });

  test('decisions are counted by action', async () => {
    const metrics = createMetrics();
    const actor = new DecisionActor({ pipeline: 'p', decision: decision(), metrics });
    actor.decideBatch([input({ gbt: 0.95 }), input({ gbt: 0.1 }), input({ gbt: 0.1 })]);
    const values = (await metrics.decisions.get()).values.map((v) => [v.labels['action'], v.value]).sort();
    assert.deepEqual(values, [['approve', 2], ['decline', 1]]);
  });
});
