import { pino, type Logger } from 'pino';
import { z } from 'zod';
import { censorSecrets } from './log-censor.js';
import { parseOptions } from './options.js';

export type { Logger };

/** The root logger's options: the one place their defaults live. */
export const loggerOptionsSchema = z.object({
  name: z.string().min(1).default('verdict'),
  level: z.string().min(1).default('info'),
});

/**
 * The root logger. Structured JSON on stderr, so stdout stays free for a command's own output (the demo's
 * progress line, `models list`, reports). Components take a child logger through `componentLogger`.
 * `level`: a pino level; default `VERDICT_LOG_LEVEL`, else info. `name`: default verdict. Secret-named fields
 * are censored in every line (core/log-censor.ts).
 */
export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  const { name, level } = parseOptions(loggerOptionsSchema, { name: options.name, level: options.level ?? process.env['VERDICT_LOG_LEVEL'] }, 'logger options');
  return pino({ name, level, formatters: { log: censorSecrets } }, pino.destination(2));
}

/** A logger that drops everything: for tests and library callers that pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });

const COMPONENT = 'component';

// Each component logger → the logger it was made from minus every component scope. Pino appends a child's
// bindings to its parent's and never replaces one, so a child with its own `component` would write the key
// twice (log pipelines keep one of them); a scoped child is made from this base instead.
const unscoped = new WeakMap<Logger, Logger>();

/**
 * A child logger for one component, named under its parent's component: a registry made with the daemon's
 * logger logs `"component":"daemon.registry"`, once per line. The parent's other bindings (pipeline, model)
 * are kept. A parent that carries a `component` it did not get from here cannot be unscoped, so its child
 * repeats the key; every component in Verdict takes its logger from here.
 */
export function componentLogger(parent: Logger, component: string, bindings: Record<string, unknown> = {}): Logger {
  const scope: unknown = parent.bindings()[COMPONENT];
  const base = unscoped.get(parent) ?? (scope === undefined ? parent : undefined);
  if (base === undefined) return parent.child({ ...bindings, [COMPONENT]: component });
  const own: Record<string, unknown> = base.bindings();
  const inherited: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parent.bindings())) {
    if (key !== COMPONENT && !(key in own && own[key] === value)) inherited[key] = value;
  }
  const name = typeof scope === 'string' ? `${scope}.${component}` : component;
  const child = base.child({ [COMPONENT]: name, ...inherited, ...bindings }, { level: parent.level });
  unscoped.set(child, base);
  return child;
}
