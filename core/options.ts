/**
 * Options in loose, compiled once. A component that takes options from code parses them with its zod
 * schema at construction, so every default lives in that schema and the component sees a complete object.
 */
import type { z } from 'zod';
import { ConfigError } from './errors.js';
import { formatZodError } from './zod-error.js';

/**
 * Parses `loose` with `schema`: a field given as `undefined` counts as absent (so the schema's default
 * applies), fields the schema does not name are dropped (unless the schema is strict), and a bad value
 * throws a `ConfigError` (`CONFIG_INVALID`) naming the field under `source`.
 */
export function parseOptions<S extends z.ZodType>(schema: S, loose: object, source: string): z.output<S> {
  const given = Object.fromEntries(Object.entries(loose).filter(([, v]) => v !== undefined));
  const parsed = schema.safeParse(given);
  if (!parsed.success) throw new ConfigError(formatZodError(parsed.error, source), { cause: parsed.error });
  return parsed.data;
}
