/**
 * Model ids: `name`, `name@<version>` or `name@<alias>`. Parsing is pure so that config validation and the CLI
 * can reject a malformed id before touching the registry.
 */
import { ConfigError } from '../core/errors.js';

/**
 * Names become directory names, so they start with a letter or digit (never `.`, which the registry uses for
 * staging directories) and hold no path separators.
 */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** Aliases start with a letter so that `name@2` is always a version and never an alias called "2". */
const ALIAS = /^[A-Za-z][A-Za-z0-9_-]*$/;
const VERSION = /^[1-9][0-9]*$/;

export type ModelSelector =
  | { readonly kind: 'default' }
  | { readonly kind: 'version'; readonly version: number }
  | { readonly kind: 'alias'; readonly alias: string };

export interface ModelId {
  readonly name: string;
  readonly selector: ModelSelector;
}

/** The alias a bare name means, when the model has it; otherwise a bare name means the latest version. */
export const DEFAULT_ALIAS = 'production';

export function assertModelName(name: string): string {
  if (!NAME.test(name) || name.includes('..')) {
    throw new ConfigError(`invalid model name "${name}": use letters, digits, "_", "-" and ".", starting with a letter or digit`);
  }
  return name;
}

export function assertAlias(alias: string): string {
  if (!ALIAS.test(alias)) {
    throw new ConfigError(`invalid alias "${alias}": use letters, digits, "_" and "-", starting with a letter`);
  }
  return alias;
}

export function assertVersion(version: number): number {
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new ConfigError(`invalid model version ${String(version)}: versions are positive integers`);
  }
  return version;
}

/** Parses a version as the CLI or a directory listing spells it; undefined when it is not a canonical version. */
export function parseVersion(text: string): number | undefined {
  return VERSION.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : undefined;
}

export function parseModelId(id: string): ModelId {
  const at = id.indexOf('@');
  if (at === -1) return { name: assertModelName(id), selector: { kind: 'default' } };
  const name = assertModelName(id.slice(0, at));
  const rest = id.slice(at + 1);
  const version = parseVersion(rest);
  if (version !== undefined) return { name, selector: { kind: 'version', version } };
  if (!ALIAS.test(rest)) {
    throw new ConfigError(`invalid model id "${id}": expected name, name@<version> or name@<alias>`);
  }
  return { name, selector: { kind: 'alias', alias: rest } };
}

/** `name@version`: the reference decisions report. */
export function modelRef(name: string, version: number): string {
  return `${name}@${version}`;
}
