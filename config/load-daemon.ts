/**
 * Loading the daemon config: YAML file → environment overrides → validation.
 *
 * Overrides: `VERDICT_<PATH>` where the path's segments are separated by `__` and written in
 * SCREAMING_SNAKE_CASE; each segment maps to the camelCase key. `VERDICT_KAFKA__GROUP_ID=g` sets
 * `kafka.groupId`, `VERDICT_METRICS__PORT=0` sets `metrics.port`. Values are read as YAML scalars
 * (numbers, booleans), and a value for a list (`VERDICT_KAFKA__BROKERS=a:9092,b:9092`) is split on commas.
 * Secrets (every key `isSecretKey` names: the SASL password, the admin token, TLS PEM material and its
 * passphrase) and names (`VERBATIM`) are taken as the exact string: a token of digits stays a string, a PEM
 * keeps its line breaks, and no parser ever sees (or quotes back) a secret.
 *
 * No error message quotes a value: YAML errors give a code and a position (config/secret-yaml.ts), schema
 * errors a path and a rule (core/zod-error.ts).
 */
import { accessSync, constants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { daemonFileSchema, type DaemonFile } from './daemon-schema.js';
import { FAILPOINTS_ENV } from '../core/failpoints.js';
import { formatZodError } from '../core/zod-error.js';
import { isSecretKey } from './redact.js';
import { parseSecretYaml } from './secret-yaml.js';
import { checkTlsMaterial } from './tls-material.js';

const PREFIX = 'VERDICT_';
/**
 * Variables with the prefix that are not config paths: the CLI's own (`verdict admin` reads the admin two)
 * and the test-only failpoints (core/failpoints.ts), which every process of a daemon reads for itself.
 */
const NOT_CONFIG = new Set(['VERDICT_LOG_LEVEL', 'VERDICT_ADMIN_TOKEN', 'VERDICT_ADMIN_URL', FAILPOINTS_ENV]);
/**
 * Non-secret paths whose value is kept verbatim (YAML would turn `0123…` into a number and `yes` into a
 * boolean); secret keys are kept verbatim wherever they are.
 */
const VERBATIM = new Set(['kafka.sasl.username']);

const camel = (segment: string): string => segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

export function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): string[] {
  const applied: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(PREFIX) || value === undefined || NOT_CONFIG.has(name)) continue;
    const path = name.slice(PREFIX.length).split('__').map(camel);
    let node: Record<string, unknown> = raw;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    const leaf = path.at(-1) ?? '';
    const dotted = path.join('.');
    node[leaf] = VERBATIM.has(dotted) || isSecretKey(leaf) ? value
      : Array.isArray(node[leaf]) || (leaf === 'brokers')
        ? value.split(',').map((v) => v.trim()).filter((v) => v.length > 0)
        : parseSecretYaml(value, `${name} (${dotted})`);
    applied.push(dotted);
  }
  return applied;
}

/** A daemon config validated and defaulted, with its pipeline path made absolute: what `Daemon` runs. */
export interface LoadedDaemonConfig {
  /** Every field defaulted (the defaults live in config/daemon-schema.ts and the schemas it composes). */
  readonly config: DaemonFile;
  /** Absolute path of the pipeline file. */
  readonly pipelinePath: string;
  /** Config paths set from the environment (for the start-up log; values are not logged: they may be secrets). */
  readonly overridden: readonly string[];
}

/** Where a raw daemon config came from, and how to finish it. */
export interface ResolveDaemonConfigOptions {
  /** Names the config in error messages (`<source> is invalid: …`): the file path, or `daemon config`. */
  readonly source: string;
  /** Directory a relative `pipeline` path is resolved against. */
  readonly baseDir: string;
  /** `VERDICT_*` overrides to apply (module comment); none when absent. */
  readonly env?: NodeJS.ProcessEnv | undefined;
}

/**
 * The one path from a raw config (parsed YAML, or an object from code) to a `LoadedDaemonConfig`: environment
 * overrides, then `daemonFileSchema`, then the pipeline path and the TLS file paths (absolute, readable). `raw`
 * is not modified (overrides go to a copy). Throws `ConfigError` (CONFIG_INVALID) naming every invalid field
 * path, a TLS file that cannot be read, or TLS material Node cannot use (config/tls-material.ts).
 */
export function resolveDaemonConfig(raw: unknown, options: ResolveDaemonConfigOptions): LoadedDaemonConfig {
  const { source, baseDir, env } = options;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${source}: must be a mapping`);
  let copy: Record<string, unknown>;
  try {
    copy = structuredClone(raw) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`${source}: must be plain data (${(err as Error).message})`, { cause: err });
  }
  const overridden = env === undefined ? [] : applyEnvOverrides(copy, env);
  const parsed = daemonFileSchema.safeParse(copy);
  if (!parsed.success) {
    // A bad value may come from the environment, not the file: say which paths it set.
    const from = overridden.length === 0 ? source : `${source} (with environment overrides: ${overridden.join(', ')})`;
    throw new ConfigError(formatZodError(parsed.error, from), { details: { overridden: overridden.join(',') } });
  }
  const config = withTlsFiles(parsed.data, baseDir, source);
  const pipelinePath = isAbsolute(config.pipeline) ? config.pipeline : resolve(baseDir, config.pipeline);
  return { config, pipelinePath, overridden };
}

/**
 * The config with `kafka.ssl`'s `caFile`, `certFile` and `keyFile` resolved against `baseDir`, each checked
 * readable now so that a wrong path is refused at load, naming the field (they are read when the client is
 * made: streams/kafka/kafkajs-client.ts). Then the PEM material itself is checked (config/tls-material.ts): a
 * key that does not parse or decrypt, a bad certificate, or a key not the cert's is refused naming the field.
 */
function withTlsFiles(config: DaemonFile, baseDir: string, source: string): DaemonFile {
  const ssl = config.kafka.ssl;
  if (typeof ssl !== 'object') return config;
  const files: Record<string, string> = {};
  for (const field of ['caFile', 'certFile', 'keyFile'] as const) {
    const given = ssl[field];
    if (given === undefined) continue;
    const path = resolve(baseDir, given);
    try {
      accessSync(path, constants.R_OK);
    } catch (err) {
      throw new ConfigError(`${source}: kafka.ssl.${field}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`, { cause: err });
    }
    files[field] = path;
  }
  const resolved = { ...ssl, ...files };
  checkTlsMaterial(resolved, source);
  return { ...config, kafka: { ...config.kafka, ssl: resolved } };
}

/**
 * Reads a daemon config YAML file, as `verdict run --config <path>` does: `VERDICT_*` overrides from `env`
 * (default `process.env`), then validation; a relative `pipeline` is resolved against the file's directory.
 * Throws `ConfigError` (CONFIG_INVALID) when the file cannot be read, is not a YAML mapping, or is invalid.
 */
export async function loadDaemonConfig(path: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedDaemonConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read daemon config ${path}: ${(err as Error).message}`, { cause: err });
  }
  const raw = parseSecretYaml(text, path);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${path}: must be a YAML mapping`);
  return resolveDaemonConfig(raw, { source: path, baseDir: dirname(resolve(path)), env });
}
