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
  log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).strict().prefault({}),
}).strict();

/** The daemon config after validation: every field present, defaults applied. */
export type DaemonFile = z.output<typeof daemonFileSchema>;
/** The daemon config as a user writes it (the YAML file's shape, or an object passed to `createDaemon`): optional fields may be left out. */
export type DaemonConfigInput = z.input<typeof daemonFileSchema>;
