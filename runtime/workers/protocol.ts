/**
 * What a worker pool and its workers say to each other, for every kind of worker (inference, block): the
 * reply envelope, the start data every worker gets, the metrics messages, and the one place transfer lists
 * are computed.
 */
import type { SerializedError } from '../../core/errors.js';

/**
 * Every task's reply. Failures come back as data, not as a thrown error: a thrown Error crosses
 * `postMessage` as a clone that keeps its message but drops `code` and every other own field.
 */
export type WorkerReply<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: SerializedError };

/** What the pool adds to each worker's own start data. */
export interface PoolWorkerData {
  /** The BroadcastChannel on which the pool asks for metrics (see `serveMetrics`). */
  readonly metricsChannel: string;
  /** The BroadcastChannel on which the pool sends control messages to every worker (see `serveControl`). */
  readonly controlChannel: string;
}

export type MetricsRequest = { readonly type: 'collect'; readonly id: number };
export type MetricsReply = { readonly type: 'metrics'; readonly id: number; readonly threadId: number; readonly json: unknown };

/** A message for every worker of a pool (e.g. load a model version); each answers once with a ControlReply. */
export type ControlRequest = { readonly type: 'control'; readonly id: number; readonly message: unknown };
export type ControlReply = { readonly type: 'control-reply'; readonly id: number; readonly threadId: number; readonly reply: WorkerReply<unknown> };

/** A typed array's bytes, or a plain array (string tensors), which has no buffer and is cloned. */
type Payload = ArrayLike<unknown> & { readonly buffer?: ArrayBufferLike };

/**
 * The buffers to transfer (move, not copy) with a message carrying these payloads: each buffer once (two
 * views of one buffer listed twice would make postMessage throw), plain arrays left to the clone.
 */
export function transferList(payloads: Iterable<Payload>): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const data of payloads) {
    if (Array.isArray(data) || data.buffer === undefined) continue;
    buffers.add(data.buffer as ArrayBuffer);
  }
  return [...buffers];
}
