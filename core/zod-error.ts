/** A zod validation error as text that names each field path, for ConfigError messages. */
import type { ZodError } from 'zod';

/** `<source> is invalid:` then one line per issue, `  path.to[0].field: message`. */
export function formatZodError(error: ZodError, source: string): string {
  const lines = error.issues.map((issue) => {
    const path = issue.path.length === 0 ? '(root)' : issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
    return `  ${path}: ${issue.message}`;
  });
  return `${source} is invalid:\n${lines.join('\n')}`;
}
