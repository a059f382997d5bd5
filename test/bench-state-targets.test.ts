/**
 * The bench's state side: the sample pipeline with its per-key state taken out (the `-no-state` targets)
 * compiles without state, keeps every feature set's width and reads no state anywhere; the Kafka targets
 * name and create the state's changelog topic as the daemon names it. Nothing here measures speed.
 */
import assert from 'node:assert/strict';
import { dirname, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { compilePipeline } from '../config/compile-pipeline.js';
import type { CompiledPipeline } from '../config/compiled.js';
import type { PipelineFile } from '../config/pipeline-schema.js';
import { preciseScheduler } from '../core/clock.js';
import { silentLogger } from '../core/log.js';
import { defaultPipelinePath } from '../core/paths.js';
import { ModelRegistry } from '../models/registry.js';
import { compileFeatures } from '../pipeline/ingest/features.js';
import { keyedStateFor } from '../runtime/keyed-state.js';
import type { ChangelogStore } from '../streams/types.js';
import { EventPool } from '../bench/events.js';
import { createKafkaTargetTopics, kafkaTargetTopics } from '../bench/targets/kafka-topics.js';
import { loadBenchPipeline } from '../bench/targets/pipeline.js';
import { readsState, withoutState } from '../bench/targets/without-state.js';

async function compile(file: PipelineFile): Promise<CompiledPipeline> {
  const baseDir = dirname(resolve(defaultPipelinePath));
  return compilePipeline(file, new ModelRegistry(resolve(baseDir, file.models.registry), silentLogger), { baseDir });
}

const widths = (p: CompiledPipeline): Record<string, number> =>
  Object.fromEntries(Object.entries(p.input.features).map(([name, specs]) => [name, compileFeatures(specs).width]));

/** Every CEL expression the compiled pipeline evaluates. */
function celOf(p: CompiledPipeline): string[] {
  const d = p.decision;
  return [
    ...(d.score === null ? [] : [d.score]),
    ...d.rules.map((r) => r.when),
    ...(d.onIncomplete.policy === 'fallback' ? d.onIncomplete.rules.map((r) => r.when) : []),
    ...p.steps.flatMap((s) => (s.when === null ? [] : [s.when])),
  ];
}

describe('the sample pipeline without its state', () => {
  test('compiles with no state, the same feature widths, and no state read in features or CEL', async () => {
    const { file } = await loadBenchPipeline(defaultPipelinePath);
    const stateful = await compile(file);
    assert.notEqual(stateful.state, null, 'the sample pipeline keeps per-key state');
    assert.ok(Object.values(stateful.input.features).flat().some((f) => 'state' in f), 'its features read state');
    assert.ok(celOf(stateful).some(readsState), 'its rules read state');

    const stateless = await compile(withoutState(file));
    assert.equal(stateless.state, null);
    assert.deepEqual(widths(stateless), widths(stateful));
    assert.deepEqual(Object.values(stateless.input.features).flat().filter((f) => 'state' in f), []);
    assert.deepEqual(celOf(stateless).filter(readsState), []);
    // Only the rules that read state are gone; the steps and the rest of the decision are as they were.
    assert.deepEqual(stateless.decision.rules.map((r) => r.reason), stateful.decision.rules.filter((r) => !readsState(r.when)).map((r) => r.reason));
    assert.deepEqual(stateless.steps.map((s) => [s.id, s.when]), stateful.steps.map((s) => [s.id, s.when]));
  });

  test('columns: an aggregate\'s own numeric field, else a constant 1; state in a step, score or fallback is dropped', async () => {
    const { file } = await loadBenchPipeline(defaultPipelinePath);
    const state: NonNullable<PipelineFile['state']> = {
      ...file.state!,
      aggregates: { n: { op: 'count', window: '1h' }, total: { op: 'sum', field: 'amount', window: '1h' }, last_cc: { op: 'last', field: 'country' } },
    };
    const custom: PipelineFile = {
      ...file,
      state,
      input: { ...file.input, features: { dense: [{ state: 'total', transform: 'log1p', missing: 0 }, { state: 'n', transform: 'identity', missing: 3 }, { state: 'last_cc', equalsField: 'country' }, { field: 'ip_risk', transform: 'identity' }] } },
      steps: file.steps.map((s) => ({ ...s, when: 'state.n > 1.0' })),
      decision: {
        ...file.decision,
        score: 'state["n"] / 10.0',
        rules: [{ when: 'event.amount > 1.0 && state.total > 5.0', action: 'review', reason: 'r1' }, { when: 'event.amount > 900.0', action: 'review', reason: 'r2' }],
        onIncomplete: { policy: 'fallback', rules: [{ when: 'state.n > 2.0', action: 'decline', reason: 'f1' }], default: 'approve' },
      },
    };
    const out = withoutState(custom);
    assert.deepEqual(out.input.features['dense'], [
      { field: 'amount', transform: 'log1p' },
      { field: 'id', equalsField: 'id' },
      { field: 'country', equalsField: 'country' },
      { field: 'ip_risk', transform: 'identity' },
    ]);
    assert.ok(out.steps.every((s) => s.when === undefined));
    assert.equal(out.decision.score, undefined);
    assert.deepEqual(out.decision.rules.map((r) => r.reason), ['r2']);
    assert.deepEqual(out.decision.onIncomplete, { policy: 'fail-open' });
    assert.equal(out.state, undefined);
    assert.equal(compileFeatures(out.input.features['dense'] ?? []).width, 4);
  });

  test('readsState tells the state map from a field named state', () => {
    assert.equal(readsState('state.txn_count_1h > 5.0'), true);
    assert.equal(readsState('has(state.x)'), true);
    assert.equal(readsState('state["x"] > 1.0'), true);
    assert.equal(readsState('event.state.x == 1'), false);
    assert.equal(readsState('event.estate > 1.0'), false);
  });

  test('a pipeline without state is returned as it is', async () => {
    const { file } = await loadBenchPipeline(defaultPipelinePath);
    const { state: _dropped, ...plain } = file;
    assert.equal(withoutState(plain), plain);
  });
});

describe('Kafka bench targets and the changelog topic', () => {
  const created = (): { calls: Array<[string, number, Readonly<Record<string, string>> | undefined]>; createTopic: (n: string, p: number, c?: Readonly<Record<string, string>>) => Promise<void> } => {
    const calls: Array<[string, number, Readonly<Record<string, string>> | undefined]> = [];
    return { calls, createTopic: (n, p, c) => { calls.push([n, p, c]); return Promise.resolve(); } };
  };

  test('Verdict on a stateful pipeline gets its changelog, compacted, with the input\'s partitions, named as the daemon names it', async () => {
    const { file } = await loadBenchPipeline(defaultPipelinePath);
    const cluster = created();
    const made = await createKafkaTargetTopics(cluster, { prefix: 'bench-r1-verdict-kafka', partitions: 6, kind: 'verdict', pipeline: file });
    assert.equal(made.changelog, `bench-r1-verdict-kafka-sut-${file.pipeline}-changelog`);
    assert.deepEqual(cluster.calls, [
      ['bench-r1-verdict-kafka-in', 6, undefined],
      ['bench-r1-verdict-kafka-out', 6, undefined],
      ['bench-r1-verdict-kafka-dlq', 1, undefined],
      [made.changelog, 6, { 'cleanup.policy': 'compact' }],
    ]);

    // The daemon's own derivation (keyedStateFor) prepares the very same topic under that group id.
    const prepared: string[] = [];
    const store: ChangelogStore = { prepare: (topic) => { prepared.push(topic); return Promise.resolve(); }, read: () => Promise.resolve() };
    const pipeline = await compile(file);
    const state = keyedStateFor(pipeline, { changelog: store, groupId: made.groupId }, { readEvent: () => ({}), clock: preciseScheduler, logger: silentLogger });
    state?.close();
    assert.deepEqual(prepared, [made.changelog]);
  });

  test('state.changelogTopic is used when set; no changelog without state or for the baselines', async () => {
    const { file } = await loadBenchPipeline(defaultPipelinePath);
    const spec = { prefix: 'p', partitions: 4 } as const;
    assert.equal(kafkaTargetTopics({ ...spec, kind: 'verdict', pipeline: { ...file, state: { ...file.state!, changelogTopic: 'my.changelog' } } }).changelog, 'my.changelog');
    assert.equal(kafkaTargetTopics({ ...spec, kind: 'verdict', pipeline: withoutState(file) }).changelog, null);
    assert.equal(kafkaTargetTopics({ ...spec, kind: 'naive', pipeline: file }).changelog, null);
    assert.equal(kafkaTargetTopics({ ...spec, kind: 'passthrough', pipeline: file }).changelog, null);
    const cluster = created();
    await createKafkaTargetTopics(cluster, { ...spec, kind: 'verdict', pipeline: withoutState(file) });
    assert.deepEqual(cluster.calls.map(([n]) => n), ['p-in', 'p-out', 'p-dlq']);
  });
});

describe('the bench event pool and per-key state', () => {
  test('each pass over the pool replays it later in event time, so no repeated event is late for its card', () => {
    const pool = new EventPool({ seed: 3, size: 200, poisonRate: 0 });
    const events = pool.sequence('e').take(600).map((e) => JSON.parse(e.value.toString()) as { id: string; key: string; ts: number; amount: number });
    for (let i = 1; i < events.length; i++) assert.ok(events[i]!.ts >= events[i - 1]!.ts, `ts goes back at event ${i}`);
    const span = events[199]!.ts - events[0]!.ts + 1;
    // The same event, the same card and body, one and two spans later; a fresh id each time.
    assert.deepEqual([events[200]!.key, events[200]!.amount, events[200]!.ts], [events[0]!.key, events[0]!.amount, events[0]!.ts + span]);
    assert.equal(events[400]!.ts, events[0]!.ts + 2 * span);
    assert.notEqual(events[200]!.id, events[0]!.id);
  });
});
