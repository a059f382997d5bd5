/**
 * The block worker: a pool task file that runs whole blocks (ingest, model actors, join, decisions,
 * encoding) off the main thread. Each worker builds its own Engine once from the compiled pipeline the main
 * thread sent (plain data, model paths and hashes resolved): it reads no pipeline file, resolves no alias
 * and compiles only the CEL, once. Inference runs in-thread (the worker is already off the main thread).
 * Its metrics live on its own registry, collected by the pool at scrape time (workers/worker-side.ts).
 *
 * Model versions follow the main thread (runtime/live-models.ts): a control message loads and warms a new
 * version before any block uses it (`prepare`) or unloads one no block uses any more (`retire`); each block
 * names the versions it runs by ref (block-wire.ts), mapped here to the versions this worker knows. A
 * worker that missed a `prepare` (a replacement for one that died) resolves an unknown ref from the registry
 * once, by its exact `name@version`.
 */
import { threadId, workerData } from 'node:worker_threads';
import { componentLogger, createLogger, silentLogger } from '../core/log.js';
import { createMetrics } from '../core/metrics.js';
import { InThreadRunner } from '../models/in-thread-runner.js';
import type { ResolvedModel } from '../models/types.js';
import { boundModels, compiledBindings, type ModelBindings } from '../pipeline/route/bindings.js';
import { outcomesToWire, fromWire, type WireBindings, type WireBlock, type WireReply } from './block-wire.js';
import { Engine } from './engine.js';
import { POOL_COUNTED_METRICS, type BlockControl, type BlockWorkerData } from './block-pool.js';
import type { WorkerReply } from './workers/protocol.js';
import { answer, serveControl, serveMetrics } from './workers/worker-side.js';

const data = workerData as BlockWorkerData;
const metrics = createMetrics();
// Counted by the pool on the main thread, from this worker's replies (see POOL_COUNTED_METRICS): the engine
// still increments them here, but they are not exported, so nothing is counted twice or lost with the thread.
for (const name of POOL_COUNTED_METRICS) metrics.registry.removeSingleMetric(name);
serveMetrics(data.metricsChannel, metrics.registry);

let engine: Promise<Engine> | undefined;

/** The versions this worker knows by ref: the compiled ones, then each one prepared or resolved. */
const known = new Map<string, Promise<ResolvedModel>>(
  [...boundModels(compiledBindings(data.pipeline))].map(([ref, model]) => [ref, Promise.resolve(model)]),
);
/** Bindings already mapped, by generation: every block of a generation shares one object. */
const mapped = new Map<number, Promise<ModelBindings>>();
const MAPPED_KEPT = 16;

/** This worker's engine, built on first use; a failed build is not cached, so the next block tries again. */
function engineForThread(): Promise<Engine> {
  engine ??= Engine.fromCompiled(data.pipeline, {
    metrics,
    logger: data.logLevel === null ? silentLogger : componentLogger(createLogger({ level: data.logLevel }), 'block_worker', { threadId }),
    runner: new InThreadRunner({ intraOpThreads: data.pipeline.placement.intraOpThreads }),
    followAliases: 'off',
    keepShadowRecords: true,
  }).catch((error: unknown) => {
    engine = undefined;
    throw error;
  });
  return engine;
}

/** A version by ref: known, or resolved from the registry once (a failure is not cached). */
function modelByRef(ref: string, e: Engine): Promise<ResolvedModel> {
  let model = known.get(ref);
  if (model === undefined) {
    model = e.registry.resolve(ref);
    known.set(ref, model);
    model.catch(() => { if (known.get(ref) === model) known.delete(ref); });
  }
  return model;
}

async function mapBindings(wire: WireBindings, e: Engine): Promise<ModelBindings> {
  const steps = await Promise.all(wire.steps.map(async (s) => ({
    primary: await modelByRef(s.primary, e),
    canary: s.canary === null ? null : { model: await modelByRef(s.canary.ref, e), percent: s.canary.percent },
    shadow: s.shadow === null ? null : await modelByRef(s.shadow, e),
  })));
  return { generation: wire.generation, steps };
}

/** The block's bindings as versions; one mapping per generation. */
function bindingsOf(wire: WireBindings, e: Engine): Promise<ModelBindings> {
  let bindings = mapped.get(wire.generation);
  if (bindings === undefined) {
    bindings = mapBindings(wire, e);
    mapped.set(wire.generation, bindings);
    bindings.catch(() => { if (mapped.get(wire.generation) === bindings) mapped.delete(wire.generation); });
    // Old generations are not needed once newer ones arrive; a straggler would map again.
    for (const generation of mapped.keys()) if (mapped.size > MAPPED_KEPT) mapped.delete(generation);
  }
  return bindings;
}

serveControl(data.controlChannel, async (message) => {
  const control = message as BlockControl;
  // A worker with no engine yet has compared nothing: the collection does not build one.
  if (control.kind === 'shadow-records') return engine === undefined ? [] : (await engine).takeShadowRecords(control.settle);
  const e = await engineForThread();
  if (control.kind === 'prepare') {
    known.set(control.model.ref, Promise.resolve(control.model));
    await e.prepareModel(control.step, control.model);
  } else {
    await e.retireModel(control.step, control.ref);
  }
  return null;
});

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
    const e = await engineForThread();
    const bindings = block.bindings === undefined ? undefined : await bindingsOf(block.bindings, e);
    const wire = outcomesToWire(await e.processBlock(fromWire(block), bindings, block.states));
    transfer = wire.transfer;
    return wire.reply;
  }, { transfer: () => transfer });
}
