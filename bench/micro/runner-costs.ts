/**
 * What one batch costs on this machine, by placement: the bare Piscina round-trip, the fixture model run
 * in-thread and through the pool at batch 1/8/64, packing and unpacking, and a full ModelActor batch.
 * Medians (and p90) over ITERATIONS sequential runs after a warm-up. Run: `node dist/bench/micro/runner-costs.js`.
 *
 * This file is also its own Piscina task file (the echo task), so the empty round-trip needs no extra module.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { ModelActor } from '../../actors/model-actor.js';
import { packageRoot } from '../../core/paths.js';
import { InThreadRunner } from '../../models/in-thread-runner.js';
import { PiscinaRunner } from '../../runtime/workers/piscina-runner.js';
import type { BatchTask, ModelRunner } from '../../models/runner.js';
import { packRows, unpackRows } from '../../models/tensors.js';
import type { ResolvedModel, RowInputs } from '../../models/types.js';

const ITERATIONS = Number(process.env['BENCH_ITERATIONS'] ?? 2000);
const WARMUP = 200;
const BATCHES = [1, 8, 64] as const;

/** The echo task for the bare round-trip. */
export default function echo(task: { n: number }): { n: number } {
  return task;
}

interface Stat { readonly name: string; readonly medianUs: number; readonly p90Us: number }

async function measure(name: string, fn: () => unknown): Promise<Stat> {
  for (let i = 0; i < WARMUP; i++) await fn();
  const samples = new Float64Array(ITERATIONS);
  for (let i = 0; i < ITERATIONS; i++) {
    const start = performance.now();
    await fn();
    samples[i] = (performance.now() - start) * 1000;
  }
  samples.sort();
  return { name, medianUs: samples[Math.floor(ITERATIONS / 2)]!, p90Us: samples[Math.floor(ITERATIONS * 0.9)]! };
}

function fixtureModel(): ResolvedModel {
  const path = resolve(packageRoot, 'test/fixtures/actors/linear16.onnx');
  const sha256 = createHash('sha256').update(readFileSync(path)).digest('hex');
  return {
    name: 'linear16', version: 1, ref: 'linear16@1', path,
    manifest: {
      name: 'linear16', version: 1, description: 'bench fixture', createdAt: new Date(0).toISOString(), sha256,
      inputs: [{ name: 'features', type: 'float32', shape: ['N', 16] }],
      outputs: [{ name: 'probability', type: 'float32', shape: ['N', 1] }, { name: 'embedding', type: 'float32', shape: ['N', 2] }],
      metrics: {},
    },
  };
}

function makeRows(n: number): RowInputs[] {
  return Array.from({ length: n }, (_, r) => ({ features: Float32Array.from({ length: 16 }, (_, i) => (r + i) / 32) }));
}

async function main(): Promise<void> {
  const model = fixtureModel();
  const { inputs: specs, outputs: outSpecs, sha256 } = model.manifest;
  const outputNames = outSpecs.map((o) => o.name);
  const task = (rows: RowInputs[]): BatchTask => ({ modelPath: model.path, modelSha256: sha256, inputs: packRows(specs, rows), outputNames });
  const stats: Stat[] = [];

  const echoPool = new Piscina<{ n: number }, { n: number }>({ filename: import.meta.url, minThreads: 1, maxThreads: 1 });
  let n = 0;
  stats.push(await measure('piscina round-trip, echo task', () => echoPool.run({ n: n++ })));
  await echoPool.close();

  const rows64 = makeRows(64);
  const packed64 = packRows(specs, rows64);
  stats.push(await measure('packRows, 64 rows x 16 floats', () => packRows(specs, rows64)));

  const inThread = new InThreadRunner();
  const pool = new PiscinaRunner({ threads: 1, intraOpThreads: 1 });
  const result64 = await inThread.run({ modelPath: model.path, modelSha256: sha256, inputs: packed64, outputNames });
  stats.push(await measure('unpackRows, 64 rows', () => unpackRows(outSpecs, result64.outputs, 64)));

  for (const size of BATCHES) {
    const rows = makeRows(size);
    // In-thread does not detach its inputs, so one packed task is reused; the pool needs fresh buffers.
    const fixed = task(rows);
    stats.push(await measure(`in-thread run, batch ${size}`, () => inThread.run(fixed)));
    stats.push(await measure(`piscina run (incl. pack), batch ${size}`, () => pool.run(task(rows))));
  }

  const actorBatch = async (runner: ModelRunner, label: string) => {
    const actor = new ModelActor({ model, runner, maxBatchSize: 64 });
    await actor.start();
    stats.push(await measure(`ModelActor 64 infers -> 1 batch, ${label}`, () => Promise.all(rows64.map((r) => actor.infer(r)))));
    await actor.stop();
  };
  await actorBatch(inThread, 'in-thread');
  await actorBatch(pool, 'piscina');

  await Promise.all([inThread.close(), pool.close()]);

  const width = Math.max(...stats.map((s) => s.name.length));
  console.log(`runner costs: median and p90 of ${ITERATIONS} sequential runs, node ${process.version}`);
  for (const s of stats) {
    console.log(`${s.name.padEnd(width)}  median ${s.medianUs.toFixed(1).padStart(8)} µs   p90 ${s.p90Us.toFixed(1).padStart(8)} µs`);
  }
}

if (isMainThread) await main();
