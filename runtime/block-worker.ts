/**
 * The block worker: a pool task file that runs whole blocks (ingest, model actors, join, decisions,
 * encoding) off the main thread. Each worker builds its own Engine once from the compiled pipeline the main
 * thread sent (plain data, model paths and hashes resolved): it reads no pipeline file, resolves no alias
 * and compiles only the CEL, once. Inference runs in-thread (the worker is already off the main thread).
 * Its metrics live on its own registry, collected by the pool at scrape time (workers/worker-side.ts).
 */
import { threadId, workerData } from 'node:worker_threads';
import { componentLogger, createLogger, silentLogger } from '../core/log.js';
import { createMetrics } from '../core/metrics.js';
import { InThreadRunner } from '../models/in-thread-runner.js';
import { outcomesToWire, fromWire, type WireBlock, type WireReply } from './block-wire.js';
import { Engine } from './engine.js';
import type { BlockWorkerData } from './block-pool.js';
import type { WorkerReply } from './workers/protocol.js';
import { answer, serveMetrics } from './workers/worker-side.js';

const data = workerData as BlockWorkerData;
const metrics = createMetrics();
serveMetrics(data.metricsChannel, metrics.registry);

let engine: Promise<Engine> | undefined;

/** This worker's engine, built on first use; a failed build is not cached, so the next block tries again. */
function engineForThread(): Promise<Engine> {
  engine ??= Engine.fromCompiled(data.pipeline, {
    metrics,
    logger: data.logLevel === null ? silentLogger : componentLogger(createLogger({ level: data.logLevel }), 'block_worker', { threadId }),
    runner: new InThreadRunner({ intraOpThreads: data.pipeline.placement.intraOpThreads }),
  }).catch((error: unknown) => {
    engine = undefined;
    throw error;
  });
  return engine;
}

/** Builds this worker's engine (models loaded and warmed) before the first block needs it. */
export function ready(): Promise<WorkerReply<null>> {
  return answer(async () => {
    await engineForThread();
    return null;
  });
}

/** One block in, one encoded outcome per record out, in order; the reply's buffer is transferred, not copied. */
export default function runBlock(block: WireBlock): Promise<WorkerReply<WireReply>> {
  let transfer: ArrayBuffer[] = [];
  return answer(async () => {
    const wire = outcomesToWire(await (await engineForThread()).processBlock(fromWire(block)));
    transfer = wire.transfer;
    return wire.reply;
  }, { transfer: () => transfer });
}
