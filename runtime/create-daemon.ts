/**
 * `createDaemon`: the daemon embedded from code. The same config as `verdict run` (a YAML file, or an object
 * of the file's shape), validated by the same schema through the same function (config/load-daemon.ts);
 * what stays in the CLI is the process around it: signal handlers, exit codes, the `.env` file.
 */
import { loadDaemonConfig, resolveDaemonConfig, type LoadedDaemonConfig } from '../config/load-daemon.js';
import type { DaemonConfigInput } from '../config/daemon-schema.js';
import type { Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/log.js';
import { Daemon } from './daemon.js';

/** `createDaemon`'s second argument; every field optional. */
export interface CreateDaemonOptions {
  /**
   * Where the daemon logs (a pino logger; its lines carry `"component":"daemon…"`). Default: silent, since a
   * library does not write to stderr unasked; the config's `log.level` is read only by `verdict run`. For
   * the CLI's output pass `createLogger({ level: config.log.level })`.
   */
  readonly logger?: Logger;
  /**
   * `VERDICT_*` environment overrides (config/load-daemon.ts: `VERDICT_KAFKA__GROUP_ID=g` sets
   * `kafka.groupId`). File form: default `process.env`, as `verdict run` applies them. Object form: none
   * unless given, since the code that builds the object already decides every value.
   */
  readonly env?: NodeJS.ProcessEnv;
  /** Object form only: the directory a relative `pipeline` path is resolved against. Default `process.cwd()`. */
  readonly baseDir?: string;
  /** Lag sampling and the forced-stop timer (`shutdown.drainTimeoutMs`). Default: the production clock (core/clock.ts). */
  readonly clock?: Clock;
}

/**
 * A daemon for one pipeline between Kafka topics, not yet started: call `start()` (resolves once `running`)
 * and `stop()` (drains, commits, closes; resolves with a `StopReport`). Installs no signal handlers and never
 * exits the process.
 *
 * `config`: a daemon config YAML path (a relative `pipeline` resolves against the file's directory), or an
 * object of the same shape (`DaemonConfigInput`; defaults in config/daemon-schema.ts). Rejects with
 * `ConfigError` (CONFIG_INVALID) when the file cannot be read or the config is invalid, naming each field
 * path. The pipeline file itself is compiled by `start()`, which rejects with CONFIG_INVALID if it is bad.
 */
export async function createDaemon(config: string | DaemonConfigInput, options: CreateDaemonOptions = {}): Promise<Daemon> {
  const loaded: LoadedDaemonConfig = typeof config === 'string'
    ? await loadDaemonConfig(config, options.env ?? process.env)
    : resolveDaemonConfig(config, { source: 'daemon config', baseDir: options.baseDir ?? process.cwd(), env: options.env });
  return new Daemon(loaded, options.logger ?? silentLogger, options.clock === undefined ? {} : { clock: options.clock });
}
