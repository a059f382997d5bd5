/**
 * Model ids: `name`, `name@<version>` or `name@<alias>`. Parsing is pure so that config validation and the CLI
 * can reject a malformed id before touching the registry.
 */
import { ConfigError, RegistryPathError } from '../core/errors.js';

/**
 * Names become directory names, so they start with a letter or digit (never `.`, which the registry uses for
 * staging directories) and hold no path separators: one plain ASCII path segment, never `..`.
 */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** Longer names are not plain segments any more (most filesystems stop at 255 bytes). */
const MAX_NAME_LENGTH = 128;
/**
 * What makes a selector (`name@<selector>`) read as a path: separators, dots, percent-encoding, NUL, and
 * anything outside printable ASCII (Unicode dots and slashes such as U+2024 or U+FF0F).
 */
const PATH_LIKE = /[/\\.%]|[^\x20-\x7e]/;
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

/** A name or selector as an error message may quote it: control characters (a NUL) escaped, and short. */
const quoted = (text: string): string => JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);

/**
 * Returns a model name that is one plain registry directory name; else throws RegistryPathError
 * (REGISTRY_PATH_INVALID), since the name is joined to the registry directory: `../x`, `/etc`, `a/b`, NUL
 * bytes, Unicode dots and a leading `.` are all refused here, before any path is built.
 */
export function assertModelName(name: string): string {
  if (!NAME.test(name) || name.includes('..') || name.length > MAX_NAME_LENGTH) {
    throw new RegistryPathError(
      `invalid model name ${quoted(name)}: a name is one registry directory name of letters, digits, "_", "-" and "." (not "..", at most ${MAX_NAME_LENGTH}), starting with a letter or digit`,
      { details: { name: quoted(name) } },
    );
  }
  return name;
}

/** A selector that is neither a version nor an alias: REGISTRY_PATH_INVALID when it reads as a path, else CONFIG_INVALID. */
function invalidSelector(what: string, text: string, message: string, selector = text): ConfigError | RegistryPathError {
  if (PATH_LIKE.test(selector)) return new RegistryPathError(`${what} ${quoted(text)}: ${message}`, { details: { selector: quoted(text) } });
  return new ConfigError(`${what} ${quoted(text)}: ${message}`);
}

export function assertAlias(alias: string): string {
  if (!ALIAS.test(alias)) throw invalidSelector('invalid alias', alias, 'use letters, digits, "_" and "-", starting with a letter');
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
  if (!ALIAS.test(rest)) throw invalidSelector('invalid model id', id, 'expected name, name@<version> or name@<alias>', rest);
  return { name, selector: { kind: 'alias', alias: rest } };
}

/** `name@version`: the reference decisions report. */
export function modelRef(name: string, version: number): string {
  return `${name}@${version}`;
}
