/** What the block pool and its workers say to each other: the worker's start data, replies and metrics messages. */
import type { PipelineFile } from '../config/pipeline-schema.js';
import type { SerializedError } from '../core/errors.js';

export interface BlockWorkerData {
  readonly file: PipelineFile;
  readonly baseDir: string;
  readonly intraOpThreads: number;
  /** pino level, or null for no logs. */
  readonly logLevel: string | null;
  /** The BroadcastChannel name on which the pool asks for metrics. */
  readonly metricsChannel: string;
}

export type MetricsRequest = { readonly type: 'collect'; readonly id: number };
export type MetricsReply = { readonly type: 'metrics'; readonly id: number; readonly threadId: number; readonly json: unknown };

/** Errors cross the thread as data: a thrown error would lose its code and details in the structured clone. */
export type BlockReply<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: SerializedError };
