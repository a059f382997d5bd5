/**
 * The router's canary split and shadow calls, on fake executors (the logic, not the models): which version
 * each row runs on, that a key always gets the same one, and that the shadow never holds up a block and is
 * dropped, and counted, when this thread's shadow rows of a step are at their bound.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { describe, test } from 'node:test';
import type { CompiledPipeline } from '../config/compiled.js';
import type { PipelineFile } from '../config/pipeline-schema.js';
import { ModelExecutionError, ModelTimeoutError } from '../core/errors.js';
import { createMetrics, type Metrics } from '../core/metrics.js';
import type { ResolvedModel, RowInputs, RowResults } from '../models/types.js';
import { DecisionActor } from '../pipeline/decide/decision-actor.js';
import { ShadowDecisions } from '../pipeline/decide/shadow-decisions.js';
import { NO_HEADERS } from '../pipeline/headers.js';
import { createIngestor } from '../pipeline/ingest/ingest.js';
import { DeadlineJoin } from '../pipeline/join/deadline-join.js';
import type { InboundRecord } from '../pipeline/record.js';
import { EventRouter, type StepExecutor } from '../pipeline/route/event-router.js';
import { inCanary } from '../pipeline/route/key-split.js';
import { SHADOW_ROWS_IN_FLIGHT } from '../pipeline/route/shadow-runs.js';
import { createBlockProcessor, type BlockProcessor } from '../pipeline/stages.js';
import { ManualScheduler } from './helpers/manual-scheduler.js';
import { compiled, samplePipeline, samplePipelinePath, transactions } from './helpers/pipelines.js';
import { seriesOf } from './helpers/exposition.js';
import { stateStage, type StateStage } from './helpers/state-reads.js';

const baseDir = dirname(samplePipelinePath);

function withGbt(edit: (gbt: PipelineFile['steps'][number]) => PipelineFile['steps'][number]) {
  return (f: PipelineFile): PipelineFile => ({ ...f, steps: f.steps.map((s) => (s.id === 'gbt' ? edit(s) : s)) });
}

/** A fake executor: every row gets `outputs`, or waits until `release()` when held. Records each call's rows. */
class FakeExecutor implements StepExecutor {
  readonly calls: number[] = [];
  #held: Array<() => void> = [];
  hold = false;
  /** `fail`: every row fails with MODEL_EXECUTION_FAILED (true) or MODEL_TIMEOUT ('timeout'). */
  constructor(readonly outputs: Record<string, number>, readonly fail: boolean | 'timeout' = false) {}

  infer(rows: readonly RowInputs[]): Promise<RowResults> {
    this.calls.push(rows.length);
    const error = this.fail === 'timeout' ? new ModelTimeoutError('late') : new ModelExecutionError('no');
    const result: RowResults = this.fail !== false
      ? { outputs: rows.map(() => undefined), errors: rows.map(() => error) }
      : { outputs: rows.map(() => ({ ...this.outputs })), errors: rows.map(() => undefined) };
    if (!this.hold) return Promise.resolve(result);
    return new Promise((resolve) => this.#held.push(() => resolve(result)));
  }

  get rows(): number {
    return this.calls.reduce((a, b) => a + b, 0);
  }

  release(): void {
    const held = this.#held;
    this.#held = [];
    for (const r of held) r();
  }
}

interface Rig {
  readonly pipeline: CompiledPipeline;
  readonly process: BlockProcessor;
  /** The state each event saw (the stream's state stage, by hand). */
  readonly states: StateStage;
  readonly executors: Map<string, FakeExecutor>;
  readonly metrics: Metrics;
  readonly shadows: ShadowDecisions;
  readonly asked: Array<{ step: number; ref: string }>;
}

/** The block processor over fake executors (one per step and version, made on first use). */
function rig(pipeline: CompiledPipeline, make: (step: string, model: ResolvedModel) => FakeExecutor): Rig {
  const scheduler = new ManualScheduler();
  const metrics = createMetrics();
  const executors = new Map<string, FakeExecutor>();
  const asked: Rig['asked'] = [];
  const join = new DeadlineJoin({ pipeline: pipeline.name, steps: pipeline.steps.map((s) => s.id), mode: pipeline.join.mode, deadlineMs: pipeline.join.deadlineMs, scheduler, metrics });
  const router = new EventRouter(pipeline, {
    executorFor: (i, model) => {
      asked.push({ step: i, ref: model.ref });
      const key = `${pipeline.steps[i]!.id}|${model.ref}`;
      let executor = executors.get(key);
      if (executor === undefined) executors.set(key, (executor = make(pipeline.steps[i]!.id, model)));
      return executor;
    },
  }, join, scheduler);
  const decider = new DecisionActor({ pipeline: pipeline.name, decision: pipeline.decision, metrics, clock: scheduler });
  const shadows = new ShadowDecisions({ pipeline: pipeline.name, steps: pipeline.steps.map((s) => s.id), decider, metrics });
  const process = createBlockProcessor({ pipeline: pipeline.name, ingestor: createIngestor(pipeline, scheduler), router, decider, scheduler, metrics, shadows });
  return { pipeline, process, executors, metrics, shadows, asked, states: stateStage(pipeline) };
}

/** Low scores for every step: the mlp's `when` is false, and every decision approves. */
const calm = (step: string): FakeExecutor => new FakeExecutor(step === 'anomaly' ? { score: 0 } : { fraud_probability: 0.1 });

const pool = transactions(256, 5).map((t) => t.event);
let offset = 0;

/** A block of events keyed by `keys` (the schema's key field), through the processor's API path. */
async function block(r: Rig, keys: readonly string[]) {
  const events = keys.map((key, i) => ({ ...pool[i % pool.length]!, id: `ev-${offset + i}`, key }));
  const records: InboundRecord[] = events.map(() => ({ topic: 't', partition: 0, offset: offset++, key: null, value: null, headers: NO_HEADERS, timestamp: 0 }));
  const outcomes = await r.process(records, { events, states: r.states(records, events) });
  return outcomes.map((o) => {
    assert.equal(o.kind, 'decision');
    return o.kind === 'decision' ? o.decision : (undefined as never);
  });
}

async function scrape(metrics: Metrics, name: string): Promise<Map<string, number>> {
  return seriesOf(await metrics.registry.metrics(), name);
}

describe('canary split in the router', () => {
  test('over 20,000 distinct keys, the canary gets its share within 5 binomial sd, and each decision names the version its row ran on', async () => {
    const pipeline = await compiled(await samplePipeline(withGbt((s) => ({ ...s, canary: { model: 'fraud_gbt@4', percent: 10 } }))), baseDir);
    const r = rig(pipeline, calm);
    const n = 20_000;
    let canary = 0;
    for (let start = 0; start < n; start += 128) {
      const keys = Array.from({ length: Math.min(128, n - start) }, (_, k) => `card-${start + k}`);
      const decisions = await block(r, keys);
      for (const [k, d] of decisions.entries()) {
        const expected = inCanary(keys[k]!, 10) ? 'fraud_gbt@4' : 'fraud_gbt@3';
        assert.equal(d.models['gbt'], expected, keys[k]);
        if (expected === 'fraud_gbt@4') canary++;
      }
    }
    // Binomial(20,000, 0.1): sd = sqrt(n p (1 - p)) ≈ 42.4; 5 sd is exceeded with probability below 1e-6.
    const sd = Math.sqrt(n * 0.1 * 0.9);
    assert.ok(Math.abs(canary - n * 0.1) <= 5 * sd, `${canary} of ${n} keys in the canary`);
    // Rows really ran where the decisions say: the canary's executor had exactly its share.
    assert.equal(r.executors.get('gbt|fraud_gbt@4')?.rows, canary);
    assert.equal(r.executors.get('gbt|fraud_gbt@3')?.rows, n - canary);
    // Other steps are untouched by the gbt step's canary.
    assert.equal(r.executors.get('anomaly|txn_autoencoder@2')?.rows, n);
  });

  test('a key sees the same version in every block, whatever else the block holds', async () => {
    const pipeline = await compiled(await samplePipeline(withGbt((s) => ({ ...s, canary: { model: 'fraud_gbt@4', percent: 30 } }))), baseDir);
    const r = rig(pipeline, calm);
    const keys = Array.from({ length: 300 }, (_, k) => `acct-${k * 31}`);
    const seen = new Map<string, Set<string>>();
    let rng = 12345;
    const next = (): number => (rng = (Math.imul(rng, 1103515245) + 12345) >>> 0);
    for (let b = 0; b < 60; b++) {
      // Blocks of varying size and composition: any key may land with any other.
      const size = 1 + (next() % 128);
      const blockKeys = Array.from({ length: size }, () => keys[next() % keys.length]!);
      for (const [k, d] of (await block(r, blockKeys)).entries()) {
        const key = blockKeys[k]!;
        if (!seen.has(key)) seen.set(key, new Set());
        seen.get(key)!.add(d.models['gbt']!);
      }
    }
    assert.ok(seen.size > 250, `${seen.size} keys seen`);
    for (const [key, versions] of seen) assert.equal(versions.size, 1, `${key} saw ${[...versions].join(', ')}`);
    const inside = [...seen.values()].filter((v) => v.has('fraud_gbt@4')).length;
    assert.ok(inside > 0 && inside < seen.size, 'both versions decided for some keys');
  });
});

describe('shadow in the router', () => {
  const shadowed = async () => compiled(await samplePipeline(withGbt((s) => ({ ...s, shadow: 'fraud_gbt@4' }))), baseDir);
  const keys = (n: number, from = 0) => Array.from({ length: n }, (_, k) => `k-${from + k}`);

  test('a block is decided while its shadow has not answered; the shadow call is dropped and counted past the bound, and compared once it answers', async () => {
    const shadow = new FakeExecutor({ fraud_probability: 0.95 });
    shadow.hold = true;
    const r = rig(await shadowed(), (step, model) => (model.ref === 'fraud_gbt@4' ? shadow : calm(step)));
    const blocks = SHADOW_ROWS_IN_FLIGHT / 128;
    // Bound full: `blocks` blocks of shadow rows are in flight, none answered; every block is decided anyway.
    for (let b = 0; b < blocks; b++) {
      const decisions = await block(r, keys(128, b * 128));
      assert.ok(decisions.every((d) => d.action === 'approve' && d.models['gbt'] === 'fraud_gbt@3'));
    }
    assert.deepEqual(shadow.calls, new Array<number>(blocks).fill(128));
    // One more block: its shadow call is not made.
    await block(r, keys(128, 10_000));
    assert.equal(shadow.calls.length, blocks);
    assert.deepEqual(await scrape(r.metrics, 'verdict_shadow_dropped_total'), new Map([['{pipeline="card-risk",step="gbt",reason="backpressure"}', 128]]));
    assert.equal((await scrape(r.metrics, 'verdict_shadow_decisions_total')).size, 0, 'nothing compared before the shadow answers');

    shadow.release();
    await r.shadows.settled();
    // The shadow says 0.95 where the primary said 0.1: rule high_gbt would decline every one of them.
    assert.deepEqual(await scrape(r.metrics, 'verdict_shadow_decisions_total'), new Map([
      ['{pipeline="card-risk",step="gbt",primary_action="approve",shadow_action="decline",agree="false"}', blocks * 128],
    ]));
    // The shadow's decisions were never counted as decisions.
    assert.deepEqual(await scrape(r.metrics, 'verdict_decisions_total'), new Map([['{pipeline="card-risk",action="approve"}', (blocks + 1) * 128]]));
    // Room again: the next block's shadow runs.
    shadow.hold = false;
    await block(r, keys(64, 20_000));
    await r.shadows.settled();
    assert.equal(shadow.calls.length, blocks + 1);
  });

  test('with a canary taking every key, the shadow is compared with the canary\'s decisions', async () => {
    const pipeline = await compiled(await samplePipeline(withGbt((s) => ({ ...s, canary: { model: 'fraud_gbt@4', percent: 100 }, shadow: 'fraud_gbt@3' }))), baseDir);
    const r = rig(pipeline, (step, model) => (step === 'gbt' && model.ref === 'fraud_gbt@4' ? new FakeExecutor({ fraud_probability: 0.95 }) : calm(step)));
    const decisions = await block(r, keys(40));
    await r.shadows.settled();
    assert.ok(decisions.every((d) => d.models['gbt'] === 'fraud_gbt@4' && d.action === 'decline'));
    assert.equal(r.executors.get('gbt|fraud_gbt@3')?.rows, 40, 'the shadow (here the primary\'s version) ran every row');
    assert.deepEqual(await scrape(r.metrics, 'verdict_shadow_decisions_total'), new Map([
      ['{pipeline="card-risk",step="gbt",primary_action="decline",shadow_action="approve",agree="false"}', 40],
    ]));
    // The canary's 0.95 made the mlp run (its `when` is gbt > 0.3), and the shadow decision keeps the mlp's
    // output (dependents are not re-run): scores (0.1 + 0.1) / 2 against (0.95 + 0.1) / 2, per event.
    const sum = (await scrape(r.metrics, 'verdict_shadow_score_difference_sum')).get('{pipeline="card-risk",step="gbt"}')!;
    assert.ok(Math.abs(sum - 40 * ((0.1 + 0.1) / 2 - (0.95 + 0.1) / 2)) < 1e-9, String(sum));
    assert.ok(decisions.every((d) => d.completeness['mlp'] === 'ok'));
  });

  test('shadow rows that time out are counted as dropped (timeout), apart from failures', async () => {
    const r = rig(await shadowed(), (step, model) => (model.ref === 'fraud_gbt@4' ? new FakeExecutor({}, 'timeout') : calm(step)));
    const decisions = await block(r, keys(30));
    await r.shadows.settled();
    assert.ok(decisions.every((d) => d.completeness['gbt'] === 'ok'));
    assert.deepEqual(await scrape(r.metrics, 'verdict_shadow_dropped_total'), new Map([['{pipeline="card-risk",step="gbt",reason="timeout"}', 30]]));
  });

  test('shadow rows that fail are counted as dropped (failed), and never reach the decision', async () => {
    const r = rig(await shadowed(), (step, model) => (model.ref === 'fraud_gbt@4' ? new FakeExecutor({}, true) : calm(step)));
    const decisions = await block(r, keys(50));
    await r.shadows.settled();
    assert.ok(decisions.every((d) => d.completeness['gbt'] === 'ok' && d.action === 'approve'));
    assert.deepEqual(await scrape(r.metrics, 'verdict_shadow_dropped_total'), new Map([['{pipeline="card-risk",step="gbt",reason="failed"}', 50]]));
    assert.equal((await scrape(r.metrics, 'verdict_shadow_decisions_total')).size, 0);
  });
});
