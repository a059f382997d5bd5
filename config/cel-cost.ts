/**
 * The cost of a CEL expression: bounded when it compiles, metered when it runs.
 *
 * Cost unit: one AST node evaluation. Outside comprehensions every node counts once. A comprehension (the
 * `exists`, `all`, `exists_one`, `map` and `filter` macros) counts its body once per item of the list it
 * walks, so nesting multiplies: `l.exists(a, l.exists(b, a == b))` over 1,000 items is about 10^6 × 5.
 *
 * At compile time each list is taken at its largest: a list literal at its own length, any other list at
 * `maxListItems` (an event holds at most the input limits' `maxFields` values, so no list in it is longer)
 * or, for a list made by `split`, `maxStringLength + 1`. An expression whose bound is above `maxEvaluationCost` is refused
 * (CONFIG_RULE_TOO_LARGE). At run time, lists the bound could not see (a model output wider than assumed)
 * are caught by a meter: each iteration of a comprehension adds its body's cost, and past
 * `maxEvaluationCost` the evaluation stops with RuleCostExceededError (RULE_COST_EXCEEDED). An expression
 * without comprehensions is not metered at all: its cost is its size.
 *
 * The AST's depth is bounded too (`CEL_MAX_TREE_DEPTH`, 256): cel-js checks and evaluates recursively, and
 * 4,000 unary operators in a row (`!!!!…true`, within the length limit) overflowed its type checker's stack.
 * cel-js's own `maxDepth` counts only parentheses, calls, literals and member chains, not operator chains.
 *
 * `cel.bind` is refused: a bound variable can be used twice, so a chain of binds doubles a value's size at
 * each step (`cel.bind(a, s + s, cel.bind(b, a + a, …))`) at no node cost. Without it, a value grows at most
 * linearly with the expression's size.
 *
 * This reads cel-js's parsed AST (`@marcbachmann/cel-js` 8: `ASTNode` with `op`, `args`, `meta.alternate`
 * for expanded macros, and a per-node `evaluate`). If a future version changes that shape, `meterFor`
 * throws at compile time rather than leaving an expression unmetered (test/cel-limits.test.ts pins it).
 */
import { RE2JS } from 're2js';
import { ConfigError, InternalError, RuleCostExceededError, RuleError, RuleTooLargeError } from '../core/errors.js';

/** The bounds one expression is compiled and run under. */
export interface CelBounds {
  /** `limits.maxEvaluationCost`: AST node evaluations per evaluation. */
  readonly maxEvaluationCost: number;
  /** The most items a list in the context can have (the input limits' `maxFields`). */
  readonly maxListItems: number;
  /** The longest string in the context (the input limits' `maxStringLength`): a `split` gives at most one more item. */
  readonly maxStringLength: number;
}

/**
 * The deepest AST accepted: an `a || b || …` chain of 256 conditions, or 256 unary operators. Deeper
 * expressions are refused before cel-js type-checks them, since its checker recurses once per level.
 */
export const CEL_MAX_TREE_DEPTH = 256;

type EvaluateFn = (this: unknown, ev: unknown, ast: unknown, ctx: unknown) => unknown;

/** The part of cel-js's ASTNode this module reads. */
interface CelNode {
  readonly op: string;
  readonly args: unknown;
  readonly meta: { readonly alternate?: CelNode; readonly macro?: unknown; readonly evaluate?: EvaluateFn };
  evaluate: EvaluateFn;
}

interface Comprehension {
  readonly iterable: CelNode;
  readonly init: CelNode;
  readonly step: CelNode;
  /** Quantifiers (`exists`, `all`): whether to go on, given the result so far. */
  readonly condition?: (accu: unknown) => boolean;
  /** True for `map`, `filter`, `exists_one`: an error in the body ends the loop; quantifiers go on past it. */
  readonly errorsAreFatal?: boolean;
}

/** A comprehension's body, and its cost per iteration (nested comprehensions' bodies excluded: they meter themselves). */
interface Loop {
  readonly step: CelNode;
  readonly cost: number;
  /**
   * What the body returns once the meter has stopped, for a quantifier: a result its condition ends the
   * loop on (`true` for `exists`, `false` for `all`). Undefined: the body throws, which ends the loop.
   */
  readonly finish: { readonly value: boolean } | undefined;
}

interface Cost {
  /** The bound over the largest lists. */
  readonly total: number;
  /** What one evaluation of the node costs apart from comprehension bodies. */
  readonly own: number;
}

function isNode(value: unknown): value is CelNode {
  return typeof value === 'object' && value !== null && typeof (value as CelNode).op === 'string' && 'meta' in value;
}

function comprehensionOf(node: CelNode): Comprehension {
  const args = node.args as Partial<Comprehension> | null;
  if (!isNode(args?.iterable) || !isNode(args.init) || !isNode(args.step)) {
    throw new InternalError('cel-js comprehension node without iterable, init and step: the CEL cost meter does not know this cel-js version');
  }
  return args as Comprehension;
}

/** The AST nodes among a node's operands (arrays of operands and map entries included; names skipped). */
function children(value: unknown, out: CelNode[] = []): CelNode[] {
  if (isNode(value)) out.push(value);
  else if (Array.isArray(value)) for (const item of value) children(item, out);
  return out;
}

/** True when `node` is a call of `name` (a function, or a method on any receiver). */
function calls(node: CelNode, name: string): boolean {
  return (node.op === 'call' || node.op === 'rcall') && Array.isArray(node.args) && node.args[0] === name;
}

function contains(node: CelNode, test: (n: CelNode) => boolean): boolean {
  if (test(node)) return true;
  const inner = node.meta.alternate;
  if (inner !== undefined) return contains(inner, test);
  if (node.op === 'comprehension') {
    const c = comprehensionOf(node);
    return contains(c.iterable, test) || contains(c.step, test);
  }
  return children(node.args).some((child) => contains(child, test));
}

function tooCostly(path: string, message: string, details: Record<string, number | string> = {}): RuleTooLargeError {
  return new RuleTooLargeError(`${path}: ${message}`, { details: { path, ...details } });
}

/** The AST's operand nodes, expanded macros and comprehension parts included. */
function operands(node: CelNode): CelNode[] {
  const { alternate } = node.meta;
  if (alternate !== undefined) return [alternate];
  if (node.op === 'comprehension') {
    const c = comprehensionOf(node);
    return [c.iterable, c.init, c.step];
  }
  return children(node.args);
}

/** The AST's depth, walked without recursion (the point is to refuse trees too deep to recurse over), up to `limit + 1`. */
function depthOf(root: CelNode, limit: number): number {
  let deepest = 0;
  const stack: Array<[CelNode, number]> = [[root, 1]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [node, depth] = top;
    if (depth > deepest) deepest = depth;
    if (deepest > limit) return deepest;
    for (const child of operands(node)) stack.push([child, depth + 1]);
  }
  return deepest;
}

/** The expression's cost bound, and its comprehensions' bodies with their per-iteration costs. */
function analyse(root: CelNode, bounds: CelBounds, path: string): { cost: Cost; loops: Loop[]; growth: CelNode[]; regexes: RegexCall[] } {
  const loops: Loop[] = [];
  const growth: CelNode[] = [];
  const regexes: RegexCall[] = [];
  let inLoop = 0;
  const visit = (node: CelNode): Cost => {
    const { alternate, macro } = node.meta;
    if (alternate !== undefined) return visit(alternate);
    if (macro !== undefined && calls(node, 'bind')) {
      throw tooCostly(path, 'cel.bind is not allowed: chained binds can double a value\'s size at every step, which no cost bound sees');
    }
    if (calls(node, 'matches')) regexes.push(regexCall(node, path));
    if (node.op === 'comprehension') {
      const comprehension = comprehensionOf(node);
      const { iterable, init, step } = comprehension;
      const [it, first] = [visit(iterable), visit(init)];
      inLoop++;
      const body = visit(step);
      inLoop--;
      // A list literal has exactly its items (maxListItems could under- or over-count it); a list made by
      // `split` has at most one more item than the longest string; any other list is at most maxListItems.
      const items = iterable.op === 'list' && Array.isArray(iterable.args)
        ? iterable.args.length
        : contains(iterable, (n) => calls(n, 'split')) ? bounds.maxStringLength + 1 : bounds.maxListItems;
      loops.push({ step, cost: body.own, finish: finishOf(comprehension) });
      return { total: 1 + it.total + first.total + items * body.total, own: 1 + it.own + first.own };
    }
    // A `+` run once per item builds a list or string each time: the meter counts what it builds.
    if (node.op === '+' && inLoop > 0) growth.push(node);
    let total = 1;
    let own = 1;
    for (const child of children(node.args)) {
      const c = visit(child);
      total += c.total;
      own += c.own;
    }
    return { total, own };
  };
  return { cost: visit(root), loops, growth, regexes };
}

/** A `matches` call: its node, the node giving the string, and its pattern compiled by RE2JS. */
interface RegexCall {
  readonly node: CelNode;
  readonly subject: CelNode;
  readonly pattern: RE2JS;
  readonly source: string;
}

/**
 * `matches` is run by RE2 (RE2JS, the JavaScript port of Google's RE2), not by cel-js's JavaScript RegExp.
 * A backtracking engine takes exponential or polynomial time on crafted strings (`(a+)+$`, `(a|aa)*b`,
 * `a*a*a*b`), so one rule could stall the thread for seconds; RE2 matches in time linear in the string's
 * length for every pattern. It is also what CEL specifies: `matches` takes RE2 syntax
 * (https://github.com/google/cel-spec/blob/master/doc/langdef.md#regular-expressions). The pattern must be a
 * string literal, compiled once here: a pattern RE2 refuses (a backreference, a lookaround) is a config
 * error, and no pattern ever comes from event data.
 */
function regexCall(node: CelNode, path: string): RegexCall {
  const args = node.args as unknown[];
  const operands = node.op === 'rcall' ? [args[1], ...(Array.isArray(args[2]) ? (args[2] as unknown[]) : [])] : args[1];
  const [subject, pattern]: readonly unknown[] = Array.isArray(operands) && operands.length === 2 ? (operands as unknown[]) : [];
  if (!isNode(subject) || !isNode(pattern) || pattern.op !== 'value' || typeof pattern.args !== 'string') {
    throw tooCostly(path, 'matches() needs a string and a string literal as its pattern: a pattern from the event is never compiled');
  }
  try {
    return { node, subject, pattern: RE2JS.compile(pattern.args), source: pattern.args };
  } catch (error) {
    throw new ConfigError(`${path}: matches() pattern ${JSON.stringify(pattern.args)} is not an RE2 regular expression (CEL's syntax; no backreferences or lookarounds): ${(error as Error).message}`, {
      cause: error, details: { path, pattern: pattern.args },
    });
  }
}

/** Makes each `matches` call run its RE2 pattern (after the type check, which fixes the nodes' evaluate functions). */
function useRe2(regexes: readonly RegexCall[]): void {
  for (const { node, subject, pattern, source } of regexes) {
    // An own property shadows ASTNode.prototype.evaluate, which would otherwise run the RegExp.
    node.evaluate = function re2(this: unknown, ev, _ast, ctx) {
      const value = subject.evaluate(ev, subject, ctx);
      if (typeof value !== 'string') throw new RuleError(`no such overload: matches(${source}) on a ${value === null ? 'null' : typeof value}`);
      return pattern.matcher(value).find();
    };
  }
}

/** The body result that ends a quantifier's loop (see `Loop.finish`); undefined for a loop an error ends. */
function finishOf(c: Comprehension): Loop['finish'] {
  const { condition } = c;
  if (c.errorsAreFatal === true || typeof condition !== 'function') return undefined;
  if (!condition(true)) return { value: true };
  if (!condition(false)) return { value: false };
  return undefined;
}

/** The function that runs a node, as cel-js's `ASTNode.evaluate` would pick it on first use. */
function runnerOf(node: CelNode): EvaluateFn {
  const { alternate, evaluate } = node.meta;
  if (alternate !== undefined) return (ev, _ast, ctx) => alternate.evaluate(ev, alternate, ctx);
  if (typeof evaluate !== 'function') throw new InternalError('cel-js AST node without an evaluate function: the CEL cost meter does not know this cel-js version');
  return evaluate;
}

/** A parsed expression whose depth and cost bound passed: what `meter` instruments once it is type-checked. */
export interface CostBound {
  /** The compile-time bound, in AST node evaluations. */
  readonly estimated: number;
  readonly own: number;
  readonly loops: readonly Loop[];
  /** The `+` nodes inside comprehension bodies. */
  readonly growth: readonly CelNode[];
  /** The `matches` calls, run by RE2. */
  readonly regexes: readonly RegexCall[];
  readonly max: number;
  readonly path: string;
}

/**
 * Bounds a parsed expression before it is type-checked: RuleTooLargeError (CONFIG_RULE_TOO_LARGE) when its
 * AST is deeper than `CEL_MAX_TREE_DEPTH`, when it uses `cel.bind`, or when its cost bound is above
 * `maxEvaluationCost`. `root` is cel-js's parsed AST.
 */
export function boundCost(root: unknown, bounds: CelBounds, path: string): CostBound {
  if (!isNode(root)) throw new InternalError('cel-js parse result without an AST: the CEL cost meter does not know this cel-js version');
  const depth = depthOf(root, CEL_MAX_TREE_DEPTH);
  if (depth > CEL_MAX_TREE_DEPTH) {
    throw tooCostly(path, `the expression nests more than ${CEL_MAX_TREE_DEPTH} operators deep`, { maxTreeDepth: CEL_MAX_TREE_DEPTH });
  }
  const { cost, loops, growth, regexes } = analyse(root, bounds, path);
  const max = bounds.maxEvaluationCost;
  if (cost.total > max) {
    throw tooCostly(
      path,
      `its evaluation cost can reach ${cost.total}, above limits.maxEvaluationCost (${max}); a comprehension counts its body once per item, up to ${bounds.maxListItems} items a list (${bounds.maxStringLength + 1} after split), so nested comprehensions multiply`,
      { estimatedCost: cost.total, maxEvaluationCost: max },
    );
  }
  return { estimated: cost.total, own: cost.own, loops, growth, regexes, max, path };
}

/**
 * `evaluate` with its `matches` calls on RE2 and a meter, once the expression is type-checked (the check fixes each node's evaluate
 * function). Each iteration of a comprehension adds its body's cost, and each `+` inside one adds the
 * length of the list or string it built (which the compile-time bound counts as one node). Past
 * `maxEvaluationCost` the evaluation throws RuleCostExceededError (RULE_COST_EXCEEDED): every loop then
 * ends at its next iteration, so the overshoot is at most one body, or one `+`, per loop in progress.
 * Without comprehensions, `evaluate` itself: its cost is its size, already bounded.
 */
export function meter<C, R>(bound: CostBound, evaluate: (context: C) => R): (context: C) => R {
  const { loops, growth, regexes, max, path } = bound;
  useRe2(regexes);
  if (loops.length === 0) return evaluate;
  // One meter per compiled expression: evaluation is synchronous and never re-enters the same expression.
  let spent = 0;
  let stopped: RuleCostExceededError | null = null;
  const charge = (units: number): void => {
    if (stopped === null && (spent += units) > max) {
      // Without the path: whoever reports it (a rule's verdict, a step's `when`) puts the path first.
      stopped = new RuleCostExceededError(`evaluation stopped at ${spent} cost units, above limits.maxEvaluationCost (${max})`, {
        details: { path, maxEvaluationCost: max },
      });
    }
  };
  // An own property shadows ASTNode.prototype.evaluate, which would otherwise cache the unmetered function.
  for (const loop of loops) {
    const inner = runnerOf(loop.step);
    const { cost, finish } = loop;
    loop.step.evaluate = function metered(this: unknown, ev, ast, ctx) {
      charge(cost);
      if (stopped !== null) {
        // A quantifier goes on past an error (CEL's `exists` is true if any item is); the value that
        // ends it is returned instead, and the evaluation fails below all the same.
        if (finish !== undefined) return finish.value;
        throw stopped;
      }
      return inner.call(this, ev, ast, ctx);
    };
  }
  for (const node of growth) {
    const inner = runnerOf(node);
    node.evaluate = function measured(this: unknown, ev, ast, ctx) {
      const built = inner.call(this, ev, ast, ctx);
      if (typeof built === 'string' || Array.isArray(built)) charge(built.length);
      return built;
    };
  }
  // Read through a call: the evaluation sets it from inside cel-js, which control-flow narrowing cannot see.
  const stoppedBy = (): RuleCostExceededError | null => stopped;
  return (context: C): R => {
    spent = bound.own;
    stopped = null;
    let result: R;
    try {
      result = evaluate(context);
    } catch (error) {
      throw stoppedBy() ?? error;
    }
    // CEL's `||` and `&&` absorb an error when the other side decides, and a stopped quantifier returns
    // whatever ends it: a stopped evaluation fails all the same.
    const cutOff = stoppedBy();
    if (cutOff !== null) throw cutOff;
    return result;
  };
}
