/**
 * The worker thread's half of the pool protocol, shared by every task file: answering a task in the reply
 * envelope (its buffers moved, not copied) and answering the pool's metrics requests.
 */
import { BroadcastChannel, threadId } from 'node:worker_threads';
import { Piscina, transferableSymbol, valueSymbol } from 'piscina';
import type { Registry } from 'prom-client';
import { VerdictError, asVerdictError } from '../../core/errors.js';
import type { ControlReply, ControlRequest, MetricsReply, MetricsRequest, WorkerReply } from './protocol.js';

/**
 * Runs `work` and answers with its value, or with its error serialised (unknown errors become `fallback`).
 * `transfer` names the value's buffers to move back with it.
 */
export async function answer<T>(
  work: () => Promise<T>,
  options: { transfer?: (value: T) => ArrayBuffer[]; fallback?: typeof VerdictError } = {},
): Promise<WorkerReply<T>> {
  let value: T;
  try {
    value = await work();
  } catch (error) {
    return { ok: false, error: asVerdictError(error, options.fallback).toJSON() };
  }
  const reply: WorkerReply<T> = { ok: true, value };
  const transfer = options.transfer?.(value) ?? [];
  if (transfer.length === 0) return reply;
  // Piscina transfers what a task returns through its Transferable protocol, marked by `Piscina.move`; it
  // unwraps the marker before posting, so the pool receives `reply` itself.
  return Piscina.move({ [transferableSymbol]: transfer, [valueSymbol]: reply }) as unknown as WorkerReply<T>;
}

/**
 * Answers the pool's metrics requests on `channelName` with this thread's registry (prom-client JSON).
 * Called once when the task file loads, so a scrape is answered (with zeros) before the first task.
 */
export function serveMetrics(channelName: string, registry: Registry): void {
  const channel = new BroadcastChannel(channelName);
  // The channel must not keep the worker alive on its own.
  channel.unref();
  channel.onmessage = (event: unknown) => {
    const request = (event as { data?: MetricsRequest }).data;
    if (request?.type !== 'collect') return;
    void registry.getMetricsAsJSON().then((json) => {
      channel.postMessage({ type: 'metrics', id: request.id, threadId, json } satisfies MetricsReply);
    });
  };
}

/** Control replies kept per worker, so a resent request is answered again without running twice. */
const CONTROL_REPLIES_KEPT = 64;

/**
 * Answers the pool's control messages on `channelName` (WorkerPool.control): `handle` gets each message and
 * its value or typed error goes back, with this thread's id, in the reply envelope. The pool resends a
 * request until every thread answered (a thread still starting misses the first one): a request seen
 * before is answered again with the same reply, its work done once. Called once when the task file loads.
 */
export function serveControl(channelName: string, handle: (message: unknown) => Promise<unknown>): void {
  const channel = new BroadcastChannel(channelName);
  channel.unref();
  const replies = new Map<number, Promise<ControlReply>>();
  channel.onmessage = (event: unknown) => {
    const request = (event as { data?: ControlRequest }).data;
    if (request?.type !== 'control') return;
    let reply = replies.get(request.id);
    if (reply === undefined) {
      reply = answer(() => handle(request.message)).then((r): ControlReply => ({ type: 'control-reply', id: request.id, threadId, reply: r }));
      replies.set(request.id, reply);
      for (const id of replies.keys()) if (replies.size > CONTROL_REPLIES_KEPT) replies.delete(id);
    }
    void reply.then((r) => channel.postMessage(r));
  };
}
