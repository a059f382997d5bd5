/**
 * Swaps through a real engine, with real ONNX sessions and a temp copy of the registry: every block worker
 * loads the new version before it serves (control broadcast), blocks carry their versions to the workers
 * (a worker that missed the broadcast resolves the ref itself), the inference-pool placement and the
 * programmatic API follow aliases too.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify as stringifyYaml } from 'yaml';
import type { PipelineFile } from '../config/pipeline-schema.js';
import { ModelRegistry } from '../models/registry.js';
import { boundModels, type ModelBindings } from '../pipeline/route/bindings.js';
import type { InboundRecord } from '../pipeline/record.js';
import { BlockPool } from '../runtime/block-pool.js';
import { Engine } from '../runtime/engine.js';
import { Verdict } from '../runtime/verdict.js';
import { EmbeddedLog } from '../streams/embedded/embedded-log.js';
import { compiled, relaxedTimeouts, samplePipeline, transactions } from './helpers/pipelines.js';
import { copyRegistry } from './helpers/registry-copy.js';
import { stateStage } from './helpers/state-reads.js';

/** A poll that never comes during a test: these swaps happen on `refresh()`. */
const HOUR_MS = 3_600_000;

async function swapFile(root: string, runtime: Partial<PipelineFile['runtime']>, aliasPollMs = HOUR_MS): Promise<PipelineFile> {
  const file = relaxedTimeouts(await samplePipeline());
  return { ...file, models: { ...file.models, registry: root, aliasPollMs }, runtime: { ...file.runtime, ...runtime } };
}

const records = (n: number, seed: number): InboundRecord[] => transactions(n, seed, 0.05).map(({ event }, offset) => ({
  topic: 'transactions', partition: 0, offset, timestamp: 0, key: Buffer.from(String(event['key'])), value: Buffer.from(JSON.stringify(event)), headers: [],
}));

const gbtVersions = (values: readonly (Buffer | string | null)[]): string[] =>
  [...new Set(values.map((v) => (JSON.parse(String(v)) as { models: Record<string, string> }).models['gbt'] ?? 'none'))];

describe('swaps through the engine', () => {
  const closing: Array<{ close(): Promise<void> }> = [];
  after(async () => {
    for (const c of closing.reverse()) await c.close();
  });

  test('every block worker loads the new version before it serves; the stream then decides on it', async () => {
    const root = await copyRegistry();
    const engine = await Engine.create(await swapFile(root, { mode: 'blocks', workers: 2 }));
    closing.push(engine);
    await engine.prepareStream();
    const loadedIn = async (ref: string): Promise<number> => {
      const workers = (await engine.workerMetrics()) as Array<Array<{ name: string; values: Array<{ labels: Record<string, string> }> }>>;
      return workers.filter((w) => w.some((m) => m.name === 'verdict_model_circuit_state' && m.values.some((v) => v.labels['model'] === ref))).length;
    };
    assert.equal(await loadedIn('fraud_gbt@4'), 0);
    await new ModelRegistry(root).promote('fraud_gbt', 4);
    const [result] = await engine.models.refresh();
    assert.equal(result?.ok, true, JSON.stringify(result));
    assert.equal(await loadedIn('fraud_gbt@4'), 2, 'both block workers made (and warmed) its actor before activation');
    await engine.models.refresh(); // swaps and unloads run one at a time: this waits for the unload of @1
    assert.equal(await loadedIn('fraud_gbt@3'), 0, 'no worker still shows the unloaded version (its gauges left with its actor)');

    const { input, output } = engine.pipeline;
    const log = new EmbeddedLog();
    log.createTopic(input.topic, 2);
    log.createTopic(output.topic, 2);
    log.createTopic(output.deadLetter, 1);
    const events = transactions(300, 41, 0.05);
    await log.producer().send(events.map(({ event }) => ({ topic: input.topic, key: String(event['key']), value: JSON.stringify(event), headers: [] })));
    const stream = engine.stream(log.consumer({ groupId: 'g', topics: [input.topic] }), log.producer());
    await log.waitForRecords(output.topic, events.length);
    assert.deepEqual(await stream.drain(10_000), { drained: true, abandoned: 0 });
    const decisions = [0, 1].flatMap((p) => log.read(output.topic, p, 0));
    assert.equal(decisions.length, events.length);
    assert.deepEqual(gbtVersions(decisions.map((d) => d.value)), ['fraud_gbt@4']);
    assert.equal(log.read(output.deadLetter, 0, 0).length, 0);
    assert.deepEqual(engine.models.inflight, new Map(), 'no block holds any bindings once drained');
  });

  test('a block worker that missed the prepare resolves an unknown version from the registry by its exact ref', async () => {
    const root = await copyRegistry();
    const pipeline = await compiled(await swapFile(root, { mode: 'blocks', workers: 1 }), root);
    const pool = new BlockPool({ pipeline });
    closing.push(pool);
    await pool.ready();
    const v2 = await new ModelRegistry(root).resolve('fraud_gbt@4');
    const compiledSteps = pipeline.steps.map((s) => ({ primary: s.model, canary: null, shadow: null }));
    const bindings: ModelBindings = { generation: 7, steps: compiledSteps.map((s, i) => (i === 0 ? { ...s, primary: v2 } : s)) };
    assert.ok(!boundModels({ generation: 0, steps: compiledSteps }).has('fraud_gbt@4'), 'the worker was never told of fraud_gbt@4');
    // The state each event saw, as the stream's state stage hands it over (the sample pipeline keeps per-card state).
    const states = stateStage(pipeline);
    const first = records(50, 43);
    const encoded = await pool.process(first, bindings, states(first));
    assert.deepEqual(encoded.map((e) => e.kind), new Array<string>(50).fill('decision'));
    assert.deepEqual(gbtVersions(encoded.map((e) => e.output.value)), ['fraud_gbt@4']);
    // Without bindings the worker runs its compiled versions.
    const more = records(5, 44).map((r) => ({ ...r, offset: r.offset + 50 }));
    assert.deepEqual(gbtVersions((await pool.process(more, undefined, states(more))).map((e) => e.output.value)), ['fraud_gbt@3']);
  });

  test('with inference workers, the new version is loaded in each, then evaluate() runs it; the old one is unloaded', async () => {
    const root = await copyRegistry();
    const engine = await Engine.create(await swapFile(root, { mode: 'inference', workers: 2 }));
    closing.push(engine);
    const { event } = transactions(1, 45, 0)[0]!;
    assert.equal((await engine.evaluate(event)).decision?.models['gbt'], 'fraud_gbt@3');
    await new ModelRegistry(root).promote('fraud_gbt', 4);
    const unloaded: string[] = [];
    engine.models.events$.subscribe((e) => { if (e.event === 'unloaded') unloaded.push(e.ref); });
    const [result] = await engine.models.refresh();
    assert.equal(result?.ok, true, JSON.stringify(result));
    assert.equal((await engine.evaluate(event)).decision?.models['gbt'], 'fraud_gbt@4');
    await engine.models.refresh();
    assert.deepEqual(unloaded, ['fraud_gbt@3']);
    // An unloaded version comes back on a rollback: loaded again, everywhere.
    await new ModelRegistry(root).rollback('fraud_gbt');
    const [back] = await engine.models.refresh();
    assert.equal(back?.ok, true, JSON.stringify(back));
    assert.equal((await engine.evaluate(event)).decision?.models['gbt'], 'fraud_gbt@3');
  });

  test('the programmatic API follows the alias on its own, every models.aliasPollMs', async () => {
    const root = await copyRegistry();
    const path = join(root, 'pipeline.yaml');
    await writeFile(path, stringifyYaml({ ...(await swapFile(root, { mode: 'inference', workers: 0 }, 50)) }));
    const verdict = new Verdict({ pipeline: path });
    closing.push(verdict);
    const { event } = transactions(1, 46, 0)[0]!;
    assert.equal((await verdict.executePipeline('card-risk', event)).decision?.models['gbt'], 'fraud_gbt@3');
    await new ModelRegistry(root).promote('fraud_gbt', 4);
    // No refresh() here: the engine behind executePipeline polls the alias itself.
    const seen: string[] = [];
    for (let i = 0; i < 400 && seen.at(-1) !== 'fraud_gbt@4'; i++) {
      seen.push((await verdict.executePipeline('card-risk', event)).decision?.models['gbt'] ?? '');
      await sleep(25);
    }
    assert.equal(seen.at(-1), 'fraud_gbt@4');
    // Once switched, it stays switched: no event goes back to the old version.
    assert.deepEqual([...new Set(seen)], ['fraud_gbt@3', 'fraud_gbt@4']);
  });
});
