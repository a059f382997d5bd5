/**
 * The stream runtime's bounds (streams/runtime/partitioned-stream.ts), with their defaults: the one place they
 * live. The daemon config's `stream` block and programmatic callers both parse through this.
 */
import { z } from 'zod';

const positiveInt = z.number().int().positive();

export const streamOptionsSchema = z.object({
  /** Records in processing (released by admission, not yet acknowledged) at most. */
  maxInflight: positiveInt.default(512),
  /** Records per admitted block: the unit of processing, ordering and produce. */
  blockSize: positiveInt.default(128),
  /** The old name of `blockSize`, refused with a message that says so rather than as an unknown key. */
  chunkSize: z.never({ error: 'chunkSize was renamed blockSize' }).optional(),
  /** Records read and not yet acknowledged, across partitions, before the whole source is paused. */
  maxBuffered: positiveInt.default(8_192),
  /** The same bound for one partition, before that partition is paused. */
  maxBufferedPerPartition: positiveInt.default(4_096),
  /** How often acknowledged offsets are committed, ms. */
  commitIntervalMs: positiveInt.default(200),
  /** Produce rounds the stream has outstanding at once. */
  maxConcurrentSends: positiveInt.default(8),
}).strict();

export type StreamOptions = z.output<typeof streamOptionsSchema>;
export type StreamOptionsInput = z.input<typeof streamOptionsSchema>;
