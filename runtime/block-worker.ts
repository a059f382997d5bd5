/**
 * The block worker: a Piscina task file that runs whole blocks (ingest, model actors, join, decisions,
 * encoding) off the main thread. Each worker builds its own Engine from the pipeline file the main thread
 * compiled, with inference in-thread (the worker is already off the main thread), and answers each block
 * with its deliveries. Its metrics live on its own registry; the main thread collects them at scrape time
 * over a BroadcastChannel (see block-pool.ts).
 */
import { BroadcastChannel, threadId, workerData } from 'node:worker_threads';
import { Piscina, transferableSymbol, valueSymbol } from 'piscina';
import { asVerdictError } from '../core/errors.js';
import { componentLogger, createLogger, silentLogger } from '../core/log.js';
import { createMetrics } from '../core/metrics.js';
import { InThreadRunner } from '../models/in-thread-runner.js';
import { deliveriesToWire, fromWire, type WireBlock, type WireReply } from './block-wire.js';
import type { BlockReply, BlockWorkerData, MetricsReply, MetricsRequest } from './block-protocol.js';
import { Engine } from './engine.js';


async function reply<T>(work: () => Promise<T>): Promise<BlockReply<T>> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    return { ok: false, error: asVerdictError(error).toJSON() };
  }
}

const data = workerData as BlockWorkerData;
const metrics = createMetrics();
// Listening from the start, so a scrape is answered (with zeros) even before this worker's first block.
const channel = new BroadcastChannel(data.metricsChannel);
channel.unref();
channel.onmessage = (event: unknown) => {
  const request = (event as { data?: MetricsRequest }).data;
  if (request?.type !== 'collect') return;
  void metrics.registry.getMetricsAsJSON().then((json) => {
    channel.postMessage({ type: 'metrics', id: request.id, threadId, json } satisfies MetricsReply);
  });
};

let engine: Promise<Engine> | undefined;

function start(): Promise<Engine> {
  const logger = data.logLevel === null ? silentLogger : componentLogger(createLogger({ level: data.logLevel }), 'block_worker', { threadId });
  return Engine.create(data.file, {
    baseDir: data.baseDir,
    metrics,
    logger,
    runner: new InThreadRunner({ intraOpThreads: data.intraOpThreads }),
  });
}

/** Builds this worker's engine (models loaded and warmed) before the first block needs it. */
export function ready(): Promise<BlockReply<null>> {
  return reply(async () => {
    engine ??= start();
    await engine;
    return null;
  });
}

/** One block in, one delivery per record out, in order; the reply's buffer is transferred, not copied. */
export default async function runBlock(block: WireBlock): Promise<BlockReply<WireReply>> {
  let transfer: ArrayBuffer[] = [];
  const answer = await reply(async () => {
    // A failed start is not cached: the next block tries again.
    engine ??= start().catch((error: unknown) => {
      engine = undefined;
      throw error;
    });
    const wire = deliveriesToWire(await (await engine).processBlock(fromWire(block)));
    transfer = wire.transfer;
    return wire.reply;
  });
  return transfer.length === 0 ? answer : movable(answer, transfer);
}

/** Piscina transfers what a task returns through its Transferable protocol, marked by `Piscina.move`. */
function movable<T extends object>(value: T, transfer: ArrayBuffer[]): T {
  const transferable = { [transferableSymbol]: transfer, [valueSymbol]: value };
  // The returned wrapper is unwrapped by Piscina before the reply is posted: the caller receives `value`.
  return Piscina.move(transferable) as unknown as T;
}
