/**
 * YAML parsing for text that may hold secrets (the daemon config file, an environment override), whose
 * errors never quote the text. The `yaml` library's own messages do: a syntax error comes with the offending
 * line under a caret, an alias to no anchor names it (`password: *hunter2…` is an alias), and an unknown tag
 * (`password: !hunter2…`) is printed as a process warning with its line. Here an error is its code and
 * position only (`DUPLICATE_KEY at line 6, column 3`), warnings are errors too (a daemon config uses no tags),
 * and nothing is printed.
 */
import { parseDocument, type YAMLError } from 'yaml';
import { ConfigError } from '../core/errors.js';

const where = (e: YAMLError): string => {
  const at = e.linePos?.[0];
  return at === undefined ? e.code : `${e.code} at line ${at.line}, column ${at.col}`;
};

/**
 * The YAML `text` as plain data. Throws `ConfigError` (CONFIG_INVALID) `<what>: not valid YAML: <CODE> at line
 * L, column C; …` on a syntax error, a warning (an unresolved tag), or an alias to no anchor; the message
 * holds no part of `text`.
 */
export function parseSecretYaml(text: string, what: string): unknown {
  // logLevel silent: parseDocument would not print, but say so; warnings are turned into errors below.
  const doc = parseDocument(text, { logLevel: 'silent' });
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0) throw new ConfigError(`${what}: not valid YAML: ${problems.map(where).join('; ')}`);
  try {
    return doc.toJS() as unknown;
  } catch {
    // A ReferenceError whose message names the alias: the start of what was meant as a plain value. (Or
    // aliases that expand past the library's bound: the same message fits.)
    throw new ConfigError(`${what}: not valid YAML: an alias (a value starting with *) refers to no anchor, or aliases expand too far; quote a value that starts with * or &`);
  }
}
