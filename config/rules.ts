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
import type { RuleSpec } from './pipeline-schema.js';
import { ConfigError } from '../core/errors.js';

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

function createEnvironment(): Environment {
  // Unlisted variables are errors, so a typo (`stpes.gbt`) or a JS-looking name (`process`) is refused at load.
  const env = new Environment({ unlistedVariablesAreDyn: false })
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
 * Parses and type-checks one CEL expression over `event`, `steps`, `completeness` and `state`. Any failure is a
 * ConfigError whose message starts with the config `path` and carries CEL's message (with its caret).
 */
export function compileExpression(source: string, path: string, kind: ExpressionKind = 'any'): Evaluate {
  shared ??= createEnvironment();
  let parsed: ParseResult;
  try {
    parsed = shared.parse(source);
  } catch (err) {
    throw new ConfigError(`${path}: not a valid CEL expression: ${(err as Error).message}`, { cause: err, details: { path } });
  }
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
  return parsed as Evaluate;
}

export function compileRules(rules: readonly RuleSpec[], path: string): CompiledRule[] {
  return rules.map((r, i) => ({
    id: `${path}[${i}]`,
    path: `${path}[${i}].when`,
    action: r.action,
    reason: r.reason,
    evaluate: compileExpression(r.when, `${path}[${i}].when`, 'condition'),
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
}

export function evaluateRules(rules: readonly CompiledRule[], context: CelContext): RuleVerdict {
  let action: string | undefined;
  const reasons: string[] = [];
  const errors: string[] = [];
  const failed: string[] = [];
  for (const rule of rules) {
    let fired: unknown;
    try {
      fired = rule.evaluate(context);
    } catch (err) {
      errors.push(`${rule.path}: ${errorSummary(err)}`);
      failed.push(rule.id);
      continue;
    }
    if (fired === true) {
      action ??= rule.action;
      reasons.push(rule.reason);
    } else if (typeof fired !== 'boolean') {
      // A `dyn` condition (e.g. `event.flagged`) passed the type check but produced a non-boolean.
      errors.push(`${rule.path}: evaluated to ${typeof fired}, not a boolean`);
      failed.push(rule.id);
    }
  }
  return { action, reasons, errors, failed };
}
