/**
 * The daemon's config file: which pipeline to run, how to reach Kafka, and the operational knobs. Loaded
 * from YAML, overridden from the environment (and a `.env` file), validated once, then fully defaulted.
 */
import { z } from 'zod';
import { streamOptionsSchema } from './stream-options.js';
import { kafkaOptionsSchema } from './kafka-options.js';

export const daemonFileSchema = z.object({
  /** The pipeline file; a relative path is resolved against the config file's directory (or `createDaemon`'s `baseDir` for a config object). */
  pipeline: z.string().min(1),
  kafka: kafkaOptionsSchema,
  /** The stream runtime's bounds (config/stream-options.ts, where the defaults live). */
  stream: streamOptionsSchema.prefault({}),
  shutdown: z.object({
    /** How long a graceful stop may wait for in-flight events before it gives up on them (they are re-read after restart). */
    drainTimeoutMs: z.number().int().positive().default(15_000),
  }).strict().prefault({}),
  metrics: z.object({
    enabled: z.boolean().default(true),
    host: z.string().default('0.0.0.0'),
    port: z.number().int().nonnegative().max(65_535).default(9464),
  }).strict().prefault({}),
  /**
   * The admin API (runtime/admin/): status, models, promote, rollback, pause, resume, effective config. Bound to
   * 127.0.0.1:9465 by default; the same host and port as `metrics` serve it on the metrics endpoint (one
   * listener). Without `token` (also `VERDICT_ADMIN__TOKEN`) it is off: every /admin/* path answers 403
   * ADMIN_DISABLED, and no listener of its own is opened.
   */
  admin: z.object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().nonnegative().max(65_535).default(9465),
    /**
     * The bearer token; read from the environment rather than the file where the file is shared. One word
     * of at least 16 characters: an HTTP `Authorization: Bearer` credential has no spaces (RFC 6750's
     * b64token), so a token with one could never be sent. Empty (`VERDICT_ADMIN__TOKEN=` in a `.env`
     * template) means none: the API stays off.
     */
    token: z.preprocess(
      (v) => (v === '' ? undefined : v),
      z.string().min(16, 'must be at least 16 characters').regex(/^\S+$/, 'must not contain spaces or other whitespace (a bearer token is one word)').optional(),
    ),
  }).strict().prefault({}),
  /**
   * The crash journal (streams/runtime/crash-journal.ts, README "When the process itself crashes"): what was in
   * flight when the process died, read at the next start; a range in flight in `crashesBeforeIsolation`
   * consecutive crashes is processed in isolation, in child processes, in groups of `groupSize` records,
   * bisected down to the record that kills its process (dead-lettered with POISON_SUSPECTED).
   */
  crashJournal: z.object({
    enabled: z.boolean().default(true),
    /**
     * Where the journal files live, relative to the working directory unless absolute. It must outlive the
     * process (on Kubernetes, a volume that survives container restarts, e.g. an emptyDir); without that every
     * start looks like a first start and a crash loop is never broken.
     */
    dir: z.string().min(1).default('.verdict/crash-journal'),
    /** Consecutive crashes a range must have been in flight in before it is isolated. */
    crashesBeforeIsolation: z.number().int().min(1).max(16).default(2),
    /** Records per isolated group, before a group whose process dies is bisected. */
    groupSize: z.number().int().min(1).max(1_024).default(8),
    /** How long an isolated group may run in its child process before the child is killed and the group counted as killing it, ms. */
    childTimeoutMs: z.number().int().positive().default(30_000),
  }).strict().prefault({}),
  log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).strict().prefault({}),
}).strict();

/** The daemon config after validation: every field present, defaults applied. */
export type DaemonFile = z.output<typeof daemonFileSchema>;
/** The daemon config as a user writes it (the YAML file's shape, or an object passed to `createDaemon`): optional fields may be left out. */
export type DaemonConfigInput = z.input<typeof daemonFileSchema>;
