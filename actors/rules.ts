/**
 * CEL rules, compiled once when the pipeline loads. Rules are parsed by a CEL implementation and evaluated
 * over plain data; nothing from the config is ever run as JavaScript.
 */
import { parse as parseCel } from '@marcbachmann/cel-js';
import type { RuleSpec } from '../config/pipeline-schema.js';
import { ConfigError } from '../core/errors.js';

export type CelContext = Readonly<Record<string, unknown>>;
type Evaluate = (context: CelContext) => unknown;

export interface CompiledRule {
  readonly path: string;
  readonly action: string;
  readonly reason: string;
  readonly evaluate: Evaluate;
}

export function compileExpression(source: string, path: string): Evaluate {
  try {
    return parseCel(source) as Evaluate;
  } catch (err) {
    throw new ConfigError(`${path}: not a valid CEL expression: ${(err as Error).message}`, { cause: err, details: { path } });
  }
}

export function compileRules(rules: readonly RuleSpec[], path: string): CompiledRule[] {
  return rules.map((r, i) => ({
    path: `${path}[${i}].when`,
    action: r.action,
    reason: r.reason,
    evaluate: compileExpression(r.when, `${path}[${i}].when`),
  }));
}

export interface RuleVerdict {
  /** The first fired rule's action, or undefined when none fired. */
  readonly action: string | undefined;
  /** Every fired rule's reason, in rule order. */
  readonly reasons: string[];
  /** Rules whose evaluation failed, as `path: message`: they count as not fired. */
  readonly errors: string[];
}

export function evaluateRules(rules: readonly CompiledRule[], context: CelContext): RuleVerdict {
  let action: string | undefined;
  const reasons: string[] = [];
  const errors: string[] = [];
  for (const rule of rules) {
    let fired: unknown;
    try {
      fired = rule.evaluate(context);
    } catch (err) {
      errors.push(`${rule.path}: ${(err as Error).message}`);
      continue;
    }
    if (fired === true) {
      action ??= rule.action;
      reasons.push(rule.reason);
    } else if (typeof fired !== 'boolean') {
      errors.push(`${rule.path}: evaluated to ${typeof fired}, not a boolean`);
    }
  }
  return { action, reasons, errors };
}
