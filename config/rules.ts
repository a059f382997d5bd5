/**
 * CEL rules, compiled once when the pipeline loads. Rules are parsed and type-checked by a CEL
 * implementation and evaluated over plain data; nothing from the config is ever run as JavaScript.
 *
 * Numbers: events and model outputs are JS numbers, which CEL sees as doubles, while a literal like `500`
 * is a CEL int. cel-js 8 compares a value with either (`event.amount > 500`, `> 500.0` and `== 500` all
 * work; only `==` between two literals of different types, `1.5 == 1`, is a type error at load), but
 * standard CEL has no mixed arithmetic, so `steps.gbt.fraud_probability * 100` would fail on every event.
 * The environment below adds double/int arithmetic overloads that compute in doubles, so a config author
 * can write either literal. `%` stays int-only, as in CEL. Per-key state values (`state.<name>`) are JS
 * numbers too, so doubles (a count of 3 is 3.0), strings, booleans, or null when there is nothing to
 * report; the compiler refuses names the `state` section does not declare (config/state-refs.ts).
 */
import { Environment, type ParseResult } from '@marcbachmann/cel-js';
import { DEFAULT_INPUT_LIMITS, type RuleSpec } from './pipeline-schema.js';
import { ConfigError, RuleError, RuleTooLargeError, asVerdictError } from '../core/errors.js';
import { boundCost, meter, type CelBounds } from './cel-cost.js';

export type CelContext = Readonly<Record<string, unknown>>;
export type Evaluate = (context: CelContext) => unknown;

/** What an expression must produce: a rule condition, a score, or anything. */
export type ExpressionKind = 'condition' | 'number' | 'any';

export interface CompiledRule {
  /** The rule's config path (`decision.rules[2]`): its name in metrics and reasons. */
  readonly id: string;
  /** The path of its condition (`decision.rules[2].when`), which error messages start with. */
  readonly path: string;
  readonly action: string;
  readonly reason: string;
  readonly evaluate: Evaluate;
}

const ACCEPTED_TYPES: Readonly<Record<ExpressionKind, ReadonlySet<string> | null>> = {
  condition: new Set(['bool', 'dyn']),
  number: new Set(['double', 'int', 'dyn']),
  any: null,
};

/**
 * The bounds every expression compiles and runs under (README "Limits"). `maxExpressionLength` and
 * `maxEvaluationCost` are the pipeline's `limits`; `maxListItems` and `maxStringLength` are what the input
 * limits let an event hold, which bound the lists a comprehension walks (config/cel-cost.ts).
 */
export interface CelLimits extends CelBounds {
  /** Characters in one expression (`limits.maxExpressionLength`). */
  readonly maxExpressionLength: number;
}

/** The defaults of `limits` and of the input limits (pipeline-schema.ts), for expressions compiled outside a pipeline. */
export const DEFAULT_CEL_LIMITS: CelLimits = {
  maxExpressionLength: 4096,
  maxEvaluationCost: 10_000,
  maxListItems: DEFAULT_INPUT_LIMITS.maxFields,
  maxStringLength: DEFAULT_INPUT_LIMITS.maxStringLength,
};

/**
 * The CEL bounds of a pipeline: its `limits`, and the list and string sizes its events can have (the
 * input limits' `maxFields` and `maxStringLength`; their defaults when not given).
 */
export function celLimitsOf(
  limits: Pick<CelLimits, 'maxExpressionLength' | 'maxEvaluationCost'>,
  input: { readonly maxFields?: number; readonly maxStringLength?: number } = {},
): CelLimits {
  return {
    maxExpressionLength: limits.maxExpressionLength,
    maxEvaluationCost: limits.maxEvaluationCost,
    maxListItems: input.maxFields ?? DEFAULT_CEL_LIMITS.maxListItems,
    maxStringLength: input.maxStringLength ?? DEFAULT_CEL_LIMITS.maxStringLength,
  };
}

/**
 * cel-js's own parse-time bounds, fixed for every pipeline: nesting (parentheses, calls, member and index
 * chains) and AST nodes. Deeper nesting only risks the stack of the recursive checker and evaluator; no rule
 * needs it. The node bound is above what `maxExpressionLength`'s default allows, so the length speaks first.
 */
export const CEL_MAX_DEPTH = 32;
export const CEL_MAX_AST_NODES = 16_384;

function createEnvironment(): Environment {
  // Unlisted variables are errors, so a typo (`stpes.gbt`) or a JS-looking name (`process`) is refused at load.
  const env = new Environment({ unlistedVariablesAreDyn: false, limits: { maxDepth: CEL_MAX_DEPTH, maxAstNodes: CEL_MAX_AST_NODES } })
    .registerVariable('event', 'map<string, dyn>')
    .registerVariable('steps', 'map<string, map<string, dyn>>')
    .registerVariable('completeness', 'map<string, string>')
    // Per-key state: every declared aggregate by name; numbers are doubles, an empty window's mean is null.
    .registerVariable('state', 'map<string, dyn>');
  // CEL ints arrive as bigint; the result is a double either way.
  const d = (v: unknown): number => Number(v);
  env.registerOperator('double + int', (a, b) => d(a) + d(b));
  env.registerOperator('int + double', (a, b) => d(a) + d(b));
  env.registerOperator('double - int', (a, b) => d(a) - d(b));
  env.registerOperator('int - double', (a, b) => d(a) - d(b));
  env.registerOperator('double * int', (a, b) => d(a) * d(b));
  env.registerOperator('int * double', (a, b) => d(a) * d(b));
  env.registerOperator('double / int', (a, b) => d(a) / d(b));
  env.registerOperator('int / double', (a, b) => d(a) / d(b));
  return env;
}

// Built once per process: registration is not free, and the environment is immutable once expressions exist.
let shared: Environment | undefined;

/**
 * Parses and type-checks one CEL expression over `event`, `steps`, `completeness` and `state`, and bounds
 * it (`limits`, default `DEFAULT_CEL_LIMITS`). Any failure is a ConfigError whose message starts with the
 * config `path` and carries CEL's message (with its caret): RuleTooLargeError (CONFIG_RULE_TOO_LARGE) for
 * an expression longer than `maxExpressionLength`, nested deeper than `CEL_MAX_DEPTH` (cel-js's count) or
 * `CEL_MAX_TREE_DEPTH` (operators), with more than `CEL_MAX_AST_NODES` nodes, using `cel.bind`, or whose cost bound is above `maxEvaluationCost` (config/cel-cost.ts); else
 * CONFIG_INVALID. The returned function throws RuleCostExceededError (RULE_COST_EXCEEDED) when one
 * evaluation spends more than `maxEvaluationCost`, and CEL's own errors otherwise.
 */
export function compileExpression(source: string, path: string, kind: ExpressionKind = 'any', limits: CelLimits = DEFAULT_CEL_LIMITS): Evaluate {
  if (source.length > limits.maxExpressionLength) {
    throw new RuleTooLargeError(`${path}: the expression is ${source.length} characters, above limits.maxExpressionLength (${limits.maxExpressionLength})`, {
      details: { path, length: source.length, maxExpressionLength: limits.maxExpressionLength },
    });
  }
  shared ??= createEnvironment();
  let parsed: ParseResult;
  try {
    parsed = shared.parse(source);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'limit_exceeded') {
      throw new RuleTooLargeError(`${path}: the expression is too large: ${(err as Error).message}`, { cause: err, details: { path } });
    }
    throw new ConfigError(`${path}: not a valid CEL expression: ${(err as Error).message}`, { cause: err, details: { path } });
  }
  // Before the type check, which recurses once per AST level: too deep a tree would overflow its stack.
  const bound = boundCost(parsed.ast, limits, path);
  const checked = parsed.check();
  if (!checked.valid) {
    const message = checked.error?.message ?? 'type check failed';
    throw new ConfigError(`${path}: CEL type error: ${message}`, { cause: checked.error, details: { path } });
  }
  const accepted = ACCEPTED_TYPES[kind];
  if (accepted !== null && checked.type !== undefined && !accepted.has(checked.type)) {
    const want = kind === 'condition' ? 'a bool' : 'a number';
    throw new ConfigError(`${path}: must be ${want} expression, but is ${checked.type}`, { details: { path, type: checked.type } });
  }
  // Metered after the type check, which fixes the evaluate function of each comprehension's body.
  return meter(bound, parsed as Evaluate);
}

export function compileRules(rules: readonly RuleSpec[], path: string, limits: CelLimits = DEFAULT_CEL_LIMITS): CompiledRule[] {
  return rules.map((r, i) => ({
    id: `${path}[${i}]`,
    path: `${path}[${i}].when`,
    action: r.action,
    reason: r.reason,
    evaluate: compileExpression(r.when, `${path}[${i}].when`, 'condition', limits),
  }));
}

/** One line per failure: CEL's full message repeats the source with a caret, too much for every decision. */
export function errorSummary(err: unknown): string {
  const summary = (err as { summary?: unknown } | null)?.summary;
  if (typeof summary === 'string') return summary;
  return err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err);
}

export interface RuleVerdict {
  /** The first fired rule's action, or undefined when none fired. */
  readonly action: string | undefined;
  /** Every fired rule's reason, in rule order. */
  readonly reasons: string[];
  /** Rules whose evaluation failed, as `path: message`: they count as not fired. */
  readonly errors: string[];
  /** The ids of the rules that failed, in rule order (one per entry of `errors`). */
  readonly failed: string[];
  /** The error code of each failure (one per entry of `errors`): RULE_EVALUATION_FAILED, or RULE_COST_EXCEEDED. */
  readonly codes: string[];
}

/** The code a failed evaluation is counted under: a cost cut-off keeps its own, anything CEL throws is RULE_EVALUATION_FAILED. */
export function ruleErrorCode(err: unknown): string {
  return asVerdictError(err, RuleError).code;
}

export function evaluateRules(rules: readonly CompiledRule[], context: CelContext): RuleVerdict {
  let action: string | undefined;
  const reasons: string[] = [];
  const errors: string[] = [];
  const failed: string[] = [];
  const codes: string[] = [];
  for (const rule of rules) {
    let fired: unknown;
    try {
      fired = rule.evaluate(context);
    } catch (err) {
      errors.push(`${rule.path}: ${errorSummary(err)}`);
      failed.push(rule.id);
      codes.push(ruleErrorCode(err));
      continue;
    }
    if (fired === true) {
      action ??= rule.action;
      reasons.push(rule.reason);
    } else if (typeof fired !== 'boolean') {
      // A `dyn` condition (e.g. `event.flagged`) passed the type check but produced a non-boolean.
      errors.push(`${rule.path}: evaluated to ${typeof fired}, not a boolean`);
      failed.push(rule.id);
      codes.push(RuleError.code);
    }
  }
  return { action, reasons, errors, failed, codes };
}
