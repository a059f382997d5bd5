/**
 * Bounds on CEL and on the pipeline's size (README "Limits"): an expression's length, nesting and cost are
 * checked when it compiles (CONFIG_RULE_TOO_LARGE, with its config path); what the compile-time bound could
 * not see is cut off at run time (RULE_COST_EXCEEDED), counted, and handled like any rule error, while the
 * pipeline goes on deciding; and steps, feature columns and rules are counted (CONFIG_TOO_MANY_*).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { CEL_MAX_TREE_DEPTH } from '../config/cel-cost.js';
import { DEFAULT_CEL_LIMITS, compileExpression, type CelLimits } from '../config/rules.js';
import { pipelineFileSchema, type PipelineFile } from '../config/pipeline-schema.js';
import {
  ConfigError, RuleCostExceededError, RuleError, RuleTooLargeError, TooManyFeaturesError, TooManyRulesError, TooManyStepsError, isVerdictError,
} from '../core/errors.js';
import { createMetrics, type Metrics } from '../core/metrics.js';
import { ModelRegistry } from '../models/registry.js';
import { Engine } from '../runtime/engine.js';
import { compiled, samplePipeline, samplePipelinePath } from './helpers/pipelines.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/registry/', import.meta.url));
const baseDir = dirname(samplePipelinePath);
const CONTEXT = { steps: {}, completeness: {}, state: {} };
const items = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 0.5);

const hasCode = (code: string, path?: string) => (e: unknown): boolean =>
  isVerdictError(e) && e.code === code && (path === undefined || e.message.startsWith(`${path}: `));
const tooLarge = (path = 'r') => hasCode(RuleTooLargeError.code, path);

/** The compile-time cost bound of an expression, as the refusal with a bound of 1 reports it. */
function estimatedCost(source: string, limits: CelLimits = DEFAULT_CEL_LIMITS): number {
  try {
    compileExpression(source, 'r', 'any', { ...limits, maxEvaluationCost: 1 });
  } catch (error) {
    if (isVerdictError(error) && typeof error.details['estimatedCost'] === 'number') return error.details['estimatedCost'];
    throw error;
  }
  return 1;
}

/** Runs `evaluate` and returns its value, or the code of what it threw. */
function outcome(evaluate: (c: Record<string, unknown>) => unknown, event: Record<string, unknown>): unknown {
  try {
    return evaluate({ ...CONTEXT, event });
  } catch (error) {
    return isVerdictError(error) ? error.code : (error as Error).message;
  }
}

void describe('CEL size at compile time', () => {
  void test('an expression of exactly maxExpressionLength characters compiles; one more is CONFIG_RULE_TOO_LARGE', () => {
    const at = `event.a == '${'x'.repeat(4096 - 13)}'`;
    assert.equal(at.length, 4096);
    compileExpression(at, 'r', 'condition');
    assert.throws(() => compileExpression(`${at} `, 'decision.rules[3].when', 'condition'), tooLarge('decision.rules[3].when'));
    compileExpression(`${at} `, 'r', 'condition', { ...DEFAULT_CEL_LIMITS, maxExpressionLength: 4097 });
  });

  void test('nesting: cel-js\'s depth bound and the operator-depth bound refuse what would overflow the checker', () => {
    compileExpression(`${'('.repeat(30)}1${')'.repeat(30)} == 1`, 'r');
    assert.throws(() => compileExpression(`${'('.repeat(40)}1${')'.repeat(40)} == 1`, 'r'), tooLarge());
    compileExpression(`${'!'.repeat(CEL_MAX_TREE_DEPTH - 1)}true`, 'r');
    assert.throws(() => compileExpression(`${'!'.repeat(CEL_MAX_TREE_DEPTH)}true`, 'r'), tooLarge());
    // 4,090 of them fit in the length bound and overflowed cel-js's type checker before the depth bound.
    assert.throws(() => compileExpression(`${'!'.repeat(4090)}true`, 'r'), tooLarge());
    // A long chain of conditions is not deep nesting for cel-js, but it is for the evaluator: 200 pass.
    compileExpression(Array.from({ length: 200 }, (_, i) => `event.a == ${i}`).join(' || '), 'r', 'condition');
  });
});

void describe('CEL cost at compile time', () => {
  void test('an expression whose bound is exactly maxEvaluationCost compiles; a bound of one less refuses it', () => {
    const source = 'event.items.exists(a, a > 10.0)';
    const cost = estimatedCost(source);
    assert.ok(cost > 1000 && cost < DEFAULT_CEL_LIMITS.maxEvaluationCost, `one comprehension over 1,000 items: ${cost}`);
    compileExpression(source, 'r', 'condition', { ...DEFAULT_CEL_LIMITS, maxEvaluationCost: cost });
    assert.throws(() => compileExpression(source, 'r', 'condition', { ...DEFAULT_CEL_LIMITS, maxEvaluationCost: cost - 1 }), tooLarge());
  });

  void test('pathological rules are refused: nested comprehensions over event lists, over a split, and cel.bind', () => {
    const pathological = [
      'event.items.exists(a, event.items.exists(b, a == b + 1000000.0))',
      'size(event.items.map(a, event.items.map(b, a + b))) > 0',
      'event.items.all(a, event.items.filter(b, b > a).size() < 5)',
      "event.s.split(',').exists(x, x == 'y')",
      "cel.bind(a, event.s + event.s, cel.bind(b, a + a, size(b))) > 0",
    ];
    for (const source of pathological) {
      assert.throws(() => compileExpression(source, 'decision.rules[0].when', 'condition'), (e: unknown) =>
        e instanceof RuleTooLargeError && e instanceof ConfigError && e.message.startsWith('decision.rules[0].when: ') && e.details['path'] === 'decision.rules[0].when', source);
    }
    assert.ok(estimatedCost('event.items.exists(a, event.items.exists(b, a == b))') > 1_000_000);
  });

  void test('a list literal is costed at its own length, longer or shorter than maxFields', () => {
    // 100 × 100 iterations under the small limits' maxFields of 20 items: costed as 100 each, refused (found by the trial).
    const hundred = `[${Array.from({ length: 100 }, (_, i) => i).join(',')}]`;
    const limits: CelLimits = { ...DEFAULT_CEL_LIMITS, maxListItems: 20 };
    assert.throws(() => compileExpression(`${hundred}.all(a, ${hundred}.all(b, a + b >= 0))`, 'decision.rules[0].when', 'condition', limits), tooLarge('decision.rules[0].when'));
    // A short literal nested in an event list stays cheap.
    assert.ok(estimatedCost('event.items.exists(a, [1.0, 2.0, 3.0].exists(b, a == b))') < estimatedCost('event.items.exists(a, event.items.exists(b, a == b))') / 100);
  });

  void test('matches() runs RE2: patterns that backtrack for seconds in a JavaScript RegExp match in linear time; RE2 syntax only, literal patterns only', () => {
    const f = compileExpression("event.s.matches('^[a-z]+-(\\\\d{3})$')", 'r', 'condition');
    assert.equal(outcome(f, { s: 'abc-123' }), true);
    assert.equal(outcome(f, { s: 'abc-12' }), false);
    // Partial match, as CEL specifies (RE2's find): unanchored patterns match anywhere.
    assert.equal(outcome(compileExpression("event.s.matches('b+c')", 'r', 'condition'), { s: 'abbbcd' }), true);
    // Exponential ((a+)+, (a|aa)*) and polynomial (a*a*a*) backtracking patterns, on strings that make a
    // backtracking engine take seconds to minutes (measured: (a|aa)*b on 30 'a's ≈ 1 s with RegExp): RE2
    // answers, so these tests finish; under a RegExp they would hang the suite.
    const hostile = 'a'.repeat(20_000);
    for (const [pattern, s, expected] of [
      ['(a+)+$', hostile, true],
      ['^(a+)+$', `${hostile}!`, false],
      ['(a|aa)*b', hostile, false],
      ['^(\\\\w+\\\\s?)*$', `${'w '.repeat(5_000)}!`, false],
      ['a*a*a*a*b', hostile, false],
    ] as const) {
      assert.equal(outcome(compileExpression(`event.s.matches('${pattern}')`, 'r', 'condition'), { s }), expected, pattern);
    }
    // A backreference or a lookahead is not RE2: refused at compile time with the path; a pattern from the event is refused too.
    for (const source of ["event.s.matches('(x)\\\\1')", "event.s.matches('a(?=b)')"]) {
      assert.throws(() => compileExpression(source, 'decision.rules[0].when', 'condition'), (e: unknown) =>
        e instanceof ConfigError && e.code === ConfigError.code && e.message.startsWith('decision.rules[0].when: ') && /RE2/.test(e.message), source);
    }
    for (const source of ['event.s.matches(event.p)', "event.s.matches('a' + event.p)"]) {
      assert.throws(() => compileExpression(source, 'decision.rules[0].when', 'condition'), tooLarge('decision.rules[0].when'), source);
    }
    // A subject that is not a string fails the evaluation (counted as a rule error), as cel-js's own overload does.
    assert.equal(outcome(compileExpression("event.s.matches('a')", 'r', 'condition'), { s: 42 }), RuleError.code);
  });

  void test('expressions without comprehensions cost their size and run unmetered', () => {
    const f = compileExpression("event.amount > 100.0 && event.country != 'FR'", 'r', 'condition');
    assert.equal(outcome(f, { amount: 500, country: 'DE' }), true);
  });
});

void describe('CEL cost at run time', () => {
  // Lists longer than the compile-time bound assumed (a model output wider than maxFields): the meter cuts them off.
  const narrow: CelLimits = { ...DEFAULT_CEL_LIMITS, maxListItems: 10, maxEvaluationCost: 1000 };

  void test('exists, all, map, filter and exists_one over a list past the bound stop with RULE_COST_EXCEEDED', () => {
    for (const [source, value] of [
      ['event.items.exists(v, v < 0.0)', false],
      ['event.items.all(v, v >= 0.0)', true],
      ['size(event.items.map(v, v * 2.0)) > 0', true],
      ['size(event.items.filter(v, v < 0.0)) == 0', true],
      ['event.items.exists_one(v, v == 1.5)', true],
      // `||` and `&&` absorb an error when their other side decides: the cut-off still fails the evaluation.
      ['event.items.exists(v, v < 0.0) || true', true],
      ['false || event.items.all(v, v >= 0.0)', true],
    ] as const) {
      const f = compileExpression(source, 'r', 'condition', narrow);
      assert.equal(outcome(f, { items: items(10) }), value, `${source}: within the bound`);
      assert.equal(outcome(f, { items: items(100_000) }), RuleCostExceededError.code, `${source}: past it`);
      assert.equal(outcome(f, { items: items(10) }), value, `${source}: the meter starts afresh`);
    }
  });

  void test('the cut-off happens within one body of the bound, whatever the list\'s length', () => {
    const f = compileExpression('event.items.exists(v, v < 0.0)', 'r', 'condition', narrow);
    for (const n of [1_000, 1_000_000]) {
      let error: unknown;
      try {
        f({ ...CONTEXT, event: { items: items(n) } });
      } catch (e) {
        error = e;
      }
      assert.ok(error instanceof RuleCostExceededError, String(error));
      const spent = Number(/stopped at (\d+) cost units/.exec(error.message)?.[1]);
      assert.ok(spent > 1000 && spent <= 1000 + 6, `spent ${spent} for ${n} items`);
    }
  });

  void test('a list or string built once per item is counted by its length: growth is cut off too', () => {
    const f = compileExpression('size(event.items.map(x, event.items + event.items)) > 0', 'r', 'condition', { ...DEFAULT_CEL_LIMITS, maxListItems: 100, maxEvaluationCost: 5000 });
    assert.equal(outcome(f, { items: items(10) }), true);
    assert.equal(outcome(f, { items: items(2000) }), RuleCostExceededError.code);
    const g = compileExpression("event.items.exists(x, event.s + event.s == 'a')", 'r', 'condition', { ...DEFAULT_CEL_LIMITS, maxListItems: 100, maxEvaluationCost: 5000 });
    assert.equal(outcome(g, { items: items(3), s: 'ab' }), false);
    assert.equal(outcome(g, { items: items(3), s: 'x'.repeat(65_536) }), RuleCostExceededError.code);
  });
});

/** A registry with `echo@1`: identity over 1,200 float32 columns, so its output `y` is a list of 1,200 per row. */
async function wideRegistry(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'verdict-cel-limits-'));
  await new ModelRegistry(root).register('echo', join(FIXTURES, 'identity_f.onnx'), { inputs: [{ name: 'x', type: 'float32', shape: ['N', 1200] }] });
  await new ModelRegistry(root).register('lin', join(FIXTURES, 'linear4.onnx'));
  return root;
}

/** `when`: a second step (`lin`, after `echo`) that runs only when this condition holds. */
function widePipeline(registry: string, rule: string, maxEvaluationCost: number, when?: string): PipelineFile {
  return pipelineFileSchema.parse({
    pipeline: 'wide',
    schemas: { e: { fields: { id: { type: 'string' }, amount: { type: 'number' }, cat: { type: 'string' } } } },
    input: {
      schema: 'e',
      features: { wide: [{ field: 'cat', oneHot: Array.from({ length: 1200 }, (_, i) => `c${i}`) }], four: Array.from({ length: 4 }, () => ({ field: 'amount' })) },
    },
    steps: [
      { id: 'echo', model: 'echo@1', inputs: { x: 'features.wide' }, timeoutMs: 5000 },
      ...(when === undefined ? [] : [{ id: 'lin', model: 'lin@1', inputs: { x: 'features.four' }, when, timeoutMs: 5000 }]),
    ],
    join: { deadlineMs: 10_000 },
    decision: {
      rules: [
        { when: rule, action: 'decline', reason: 'wide' },
        { when: 'event.amount > 1000.0', action: 'review', reason: 'big' },
      ],
      default: 'approve',
      onRuleError: 'skip',
    },
    models: { registry, aliasPollMs: 0 },
    runtime: { workers: 0 },
    limits: { maxEvaluationCost },
  });
}

const errorsByCode = async (metrics: Metrics, code: string): Promise<number> =>
  (await metrics.errors.get()).values.find((v) => v.labels['code'] === code && v.labels['component'] === 'decision_actor')?.value ?? 0;
const ruleErrorsOf = async (metrics: Metrics, rule: string): Promise<number> =>
  (await metrics.ruleErrors.get()).values.find((v) => v.labels['rule'] === rule)?.value ?? 0;

void describe('a pipeline with a costly rule', () => {
  void test('a nested comprehension over a model output is refused when the pipeline compiles', async () => {
    const registry = await wideRegistry();
    try {
      const file = widePipeline(registry, 'steps.echo.y.exists(a, steps.echo.y.exists(b, a > b + 2.0))', 10_000);
      await assert.rejects(Engine.create(file, { baseDir }), (e: unknown) => hasCode(RuleTooLargeError.code, 'decision.rules[0].when')(e));
    } finally {
      await rm(registry, { recursive: true, force: true });
    }
  });

  void test('a rule over a list wider than the bound assumed is cut off, counted by code and rule, skipped; other events are decided', async () => {
    const registry = await wideRegistry();
    const rule = 'event.amount > 100.0 && steps.echo.y.exists(v, v > 2.0)';
    // Just above the compile-time bound (1,000 items a list), below the cost of the 1,200 the model gives.
    const bound = estimatedCost('steps.echo.y.exists(v, v > 2.0)') + 50;
    const metrics = createMetrics();
    const engine = await Engine.create(widePipeline(registry, rule, bound), { baseDir, metrics });
    try {
      const hot = (await engine.evaluate({ id: 'hot', amount: 500, cat: 'c5' })).decision;
      assert.ok(hot !== null);
      assert.deepEqual([hot.action, hot.policy, hot.reasons], ['approve', 'rules', ['rule_error:decision.rules[0]']]);
      assert.equal(hot.ruleErrors?.length, 1);
      assert.match(hot.ruleErrors?.[0] ?? '', /^decision\.rules\[0\]\.when: evaluation stopped at \d+ cost units, above limits\.maxEvaluationCost/);
      assert.equal(await errorsByCode(metrics, RuleCostExceededError.code), 1);
      assert.equal(await ruleErrorsOf(metrics, 'decision.rules[0]'), 1);
      // The next events are decided: one the costly rule never reaches, and one the second rule fires for.
      const cold = (await engine.evaluate({ id: 'cold', amount: 50, cat: 'c7' })).decision;
      assert.deepEqual([cold?.action, cold?.reasons, cold?.ruleErrors], ['approve', [], undefined]);
      const big = (await engine.evaluate({ id: 'big', amount: 5000, cat: 'c9' })).decision;
      assert.deepEqual([big?.action, big?.reasons], ['review', ['big', 'rule_error:decision.rules[0]']]);
      assert.equal(await errorsByCode(metrics, RuleCostExceededError.code), 2);
      assert.equal(await errorsByCode(metrics, 'RULE_EVALUATION_FAILED'), 0, 'counted under its own code only');
    } finally {
      await engine.close();
      await rm(registry, { recursive: true, force: true });
    }
  });

  void test('a step\'s `when` cut off makes that step an error for the event; the event is still decided (fail-open)', async () => {
    const registry = await wideRegistry();
    const when = 'steps.echo.y.exists(v, v > 2.0)';
    const metrics = createMetrics();
    const engine = await Engine.create(widePipeline(registry, 'event.amount > 100.0', estimatedCost(when) + 50, when), { baseDir, metrics });
    try {
      const d = (await engine.evaluate({ id: 'e1', amount: 500, cat: 'c1' })).decision;
      assert.deepEqual([d?.action, d?.policy, d?.completeness], ['decline', 'fail-open', { echo: 'ok', lin: 'error' }]);
      const outcomes = (await metrics.stepOutcomes.get()).values.find((v) => v.labels['step'] === 'lin' && v.labels['status'] === 'error');
      assert.equal(outcomes?.value, 1);
    } finally {
      await engine.close();
      await rm(registry, { recursive: true, force: true });
    }
  });
});

void describe('the pipeline\'s size', () => {
  const sample = async (edit: (f: PipelineFile) => PipelineFile): Promise<unknown> => {
    try {
      return await compiled(await samplePipeline(edit), baseDir);
    } catch (error) {
      return error;
    }
  };
  const refusedWith = (error: unknown, Class: typeof ConfigError, path: string): void => {
    assert.ok(error instanceof Class && error instanceof ConfigError, String(error));
    assert.equal(error.code, Class.code);
    assert.ok(error.message.startsWith(`${path}: `), error.message);
  };

  void test('steps: at maxSteps the pipeline compiles; one fewer allowed refuses it with CONFIG_TOO_MANY_STEPS', async () => {
    const steps = (await samplePipeline()).steps.length;
    assert.ok(!((await sample((f) => ({ ...f, limits: { ...f.limits, maxSteps: steps } }))) instanceof Error));
    refusedWith(await sample((f) => ({ ...f, limits: { ...f.limits, maxSteps: steps - 1 } })), TooManyStepsError, 'steps');
  });

  void test('feature columns: all feature sets together, at maxFeatures and one over', async () => {
    const columns = 22; // the sample's one feature set (config/pipelines/card-risk.yaml)
    assert.ok(!((await sample((f) => ({ ...f, limits: { ...f.limits, maxFeatures: columns } }))) instanceof Error));
    refusedWith(await sample((f) => ({ ...f, limits: { ...f.limits, maxFeatures: columns - 1 } })), TooManyFeaturesError, 'input.features');
  });

  void test('rules: decision rules and fallback rules together, at maxRules and one over', async () => {
    const withFallback = (f: PipelineFile): PipelineFile => ({
      ...f, decision: { ...f.decision, onIncomplete: { policy: 'fallback', rules: [{ when: 'event.amount > 5000.0', action: 'review', reason: 'x' }], default: 'approve' } },
    });
    const rules = (await samplePipeline()).decision.rules.length + 1;
    assert.ok(!((await sample((f) => ({ ...withFallback(f), limits: { ...f.limits, maxRules: rules } }))) instanceof Error));
    refusedWith(await sample((f) => ({ ...withFallback(f), limits: { ...f.limits, maxRules: rules - 1 } })), TooManyRulesError, 'decision.rules, decision.onIncomplete.rules');
  });

  void test('the defaults: 32 steps, 4,096 feature columns, 256 rules, 4,096 characters, 10,000 cost units', () => {
    const file = pipelineFileSchema.parse({
      pipeline: 'p', schemas: { e: { fields: { id: { type: 'string' } } } },
      input: { schema: 'e', features: {} }, steps: [{ id: 's', model: 'm', inputs: {} }], decision: {},
    });
    assert.deepEqual(file.limits, { maxSteps: 32, maxFeatures: 4096, maxRules: 256, maxExpressionLength: 4096, maxEvaluationCost: 10_000 });
    assert.equal(file.models.maxModelBytes, 1024 ** 3);
    assert.equal(DEFAULT_CEL_LIMITS.maxEvaluationCost, file.limits.maxEvaluationCost);
    assert.equal(DEFAULT_CEL_LIMITS.maxExpressionLength, file.limits.maxExpressionLength);
  });

  void test('the compile-time cost bound takes lists at input.limits.maxFields: fewer fields, a nested comprehension fits', async () => {
    const nested = "event.device.tags.exists(a, event.device.tags.exists(b, a == b + 'x'))";
    const withRule = (f: PipelineFile): PipelineFile => ({ ...f, decision: { ...f.decision, rules: [{ when: nested, action: 'x', reason: 'y' }, ...f.decision.rules] } });
    refusedWith(await sample(withRule), RuleTooLargeError, 'decision.rules[0].when');
    const few = await sample((f) => ({ ...withRule(f), input: { ...f.input, limits: { ...f.input.limits, maxFields: 30 } } }));
    assert.ok(!(few instanceof Error), String(few));
  });

  void test('a rule over maxExpressionLength in a pipeline file is refused with its path; raising the limit accepts it', async () => {
    const long = `event.amount > 0.0 && event.country != '${'x'.repeat(4100)}'`;
    const withRule = (f: PipelineFile): PipelineFile => ({ ...f, decision: { ...f.decision, rules: [...f.decision.rules, { when: long, action: 'x', reason: 'y' }] } });
    const index = (await samplePipeline()).decision.rules.length;
    refusedWith(await sample(withRule), RuleTooLargeError, `decision.rules[${index}].when`);
    assert.ok(!((await sample((f) => ({ ...withRule(f), limits: { ...f.limits, maxExpressionLength: 8192 } }))) instanceof Error));
  });
});
