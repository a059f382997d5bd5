/**
 * Per-key state is exact across a SIGKILL and across rebalances, as real daemon processes over the mock
 * broker (issue "Stateful per-key features", done-when 2 and 3):
 *
 * - group K: a daemon is SIGKILLed mid-stream and a new one restarts from the committed offsets and the
 *   restored state;
 * - group G: a second daemon joins mid-stream (partitions move to it, their state restored from the
 *   changelog), then the first is stopped (the rest move);
 * - group R: one daemon, never interrupted, over the same input: the reference.
 *
 * For K and G, the first decision of every event id must equal R's in everything but latencies (action,
 * score, reasons, versions, completeness, the state values it saw), and the final state of every key (read
 * from each group's changelog) must equal R's. Model outputs, and the score made of them, are compared to
 * float32 rounding (1e-6 relative): onnxruntime's result for a row depends, in its last bits, on the batch
 * it ran in (its kernels vectorise across rows), and batches differ between runs. The join deadline and step timeouts are raised far above any
 * latency here, so a decision depends only on the event, the models and the state, never on timing.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { loadPipelineFile } from '../../config/load.js';
import { compilePipeline } from '../../config/compile-pipeline.js';
import { defaultPipelinePath } from '../../core/paths.js';
import { silentLogger } from '../../core/log.js';
import { ModelRegistry } from '../../models/registry.js';
import { uniqueTopic } from '../../mock-kafka/mock-broker.js';
import { readState } from '../../pipeline/state/partition-state.js';
import type { StateValues } from '../../pipeline/state/types.js';
import { KafkaChangelog } from '../../streams/kafka/kafka-changelog.js';
import { kafkajsClientFactory } from '../../streams/kafka/kafkajs-client.js';
import { writeDaemonConfig } from './helpers/daemon-process.js';
import { describeEachProducer } from '../helpers/producers.js';
import { startHarness, type Harness } from './helpers/harness.js';
import {
  produceSteadily, readTopic, transactionMessages, waitForCommittedProgress, waitForCommittedToEnd, type ReadRecord, type Topics, endOffsets, total,
} from './helpers/kafka-io.js';
import { readWritten } from './helpers/written.js';

const PARTITIONS = 4;
const EVENTS = 6_000;

let h: Harness;

/** Decision JSON without its latencies: everything a replay must reproduce. */
function decisionsByEvent(records: readonly ReadRecord[]): Map<string, Record<string, unknown>> {
  const first = new Map<string, Record<string, unknown>>();
  // Decisions of one event share its key, hence its partition: offset order there is write order.
  const ordered = [...records].sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  for (const r of ordered) {
    const { latencyMs: _latency, ...decision } = JSON.parse(r.value ?? 'null') as Record<string, unknown>;
    const id = decision.eventId as string;
    if (!first.has(id)) first.set(id, decision);
  }
  return first;
}

/** Numbers equal to float32 rounding, anything else exactly (see the header). */
function closeTo(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return a === b;
  const [ka, kb] = [Object.keys(a), Object.keys(b)];
  return ka.length === kb.length && ka.every((k) => closeTo((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function compare(name: string, actual: Map<string, Record<string, unknown>>, reference: Map<string, Record<string, unknown>>): void {
  assert.equal(actual.size, reference.size, `${name}: decided ${actual.size} events, the reference ${reference.size}`);
  let differing = 0;
  let example = '';
  for (const [id, ref] of reference) {
    const { score, outputs, ...exact } = actual.get(id) ?? {};
    const { score: refScore, outputs: refOutputs, ...refExact } = ref;
    try {
      assert.deepEqual(exact, refExact);
      assert.ok(closeTo(score, refScore) && closeTo(outputs, refOutputs));
    } catch {
      if (differing++ === 0) example = `${id}: ${JSON.stringify(actual.get(id))} vs reference ${JSON.stringify(ref)}`;
    }
  }
  assert.equal(differing, 0, `${name}: ${differing} first decisions differ from the uninterrupted run, e.g. ${example}`);
}

describeEachProducer('per-key state across SIGKILL and rebalances', { timeout: 240_000 }, (producer) => {
  before(async () => { h = await startHarness('state-exactness'); });
  after(async () => { await h.close(); });

  test('first decisions and final state equal an uninterrupted run\'s', { timeout: 230_000 }, async (t) => {
    const input = uniqueTopic('state-in');
    await h.broker.createTopic(input, PARTITIONS);
    /** A group's own output topics and changelog (created here: the mock cannot create topics through kafkajs). */
    const groupTopics = async (name: string): Promise<{ groupId: string; topics: Topics; changelog: string }> => {
      const groupId = uniqueTopic(`g-${name}`);
      const topics = { input, output: uniqueTopic(`${name}-out`), dlq: uniqueTopic(`${name}-dlq`) };
      const changelog = `${groupId}-card-risk-changelog`;
      for (const topic of [topics.output, topics.dlq, changelog]) await h.broker.createTopic(topic, PARTITIONS);
      return { groupId, topics, changelog };
    };
    const config = (g: { groupId: string; topics: Topics }): string => writeDaemonConfig({
      producer,
      bootstrap: h.broker.bootstrap, groupId: g.groupId, topics: g.topics,
      // Commits a second apart leave decided but uncommitted records for the kill to land among.
      stream: { commitIntervalMs: 1_000 },
      editPipeline: (pipeline) => {
        const p = pipeline as unknown as { join: { deadlineMs: number }; steps: Array<{ timeoutMs?: number }> };
        p.join.deadlineMs = 60_000;
        for (const step of p.steps) step.timeoutMs = 60_000;
      },
    });
    const k = await groupTopics('kill');
    const g = await groupTopics('group');
    const r = await groupTopics('reference');

    const [k1, g1] = await Promise.all([h.daemon(config(k), 'k1'), h.daemon(config(g), 'g1')]);
    await Promise.all([k1.waitForLog((l) => l.msg === 'partitions assigned', 'k1 assigned'), g1.waitForLog((l) => l.msg === 'partitions assigned', 'g1 assigned')]);
    // About 600 events a second for 10 s: the kill, the join and the leave all land mid-stream.
    const load = produceSteadily(h.producer, input, transactionMessages(EVENTS, 12), { batch: 30, pauseMs: 50 });

    // K: killed mid-stream, restarted.
    const killRun = (async () => {
      await waitForCommittedProgress(h.admin, k.groupId, input, 1_500, 60_000);
      assert.equal((await k1.kill()).signal, 'SIGKILL');
      const k2 = await h.daemon(config(k), 'k2');
      await k2.waitForLog((l) => l.msg === 'state restored', 'k2 restoring state', 60_000);
      await load;
      await waitForCommittedToEnd(h.admin, k.groupId, input, 90_000);
      const restored = k2.logs.filter((l) => l.msg === 'state restored');
      assert.equal((await k2.stop()).code, 0, k2.describeErrors());
      return restored;
    })();
    // G: a second member joins mid-stream, then the first leaves.
    const groupRun = (async () => {
      await waitForCommittedProgress(h.admin, g.groupId, input, 1_500, 60_000);
      const g2 = await h.daemon(config(g), 'g2');
      // Partitions move to it (restored from what g1 wrote), then the rest when g1 leaves.
      await g2.waitForLog((l) => l.msg === 'state restored', 'g2 restoring the state of the partitions it took over', 60_000);
      await waitForCommittedProgress(h.admin, g.groupId, input, 4_000, 90_000);
      const before = g2.logs.length;
      assert.equal((await g1.stop()).code, 0, g1.describeErrors());
      await g2.waitForLog((l) => l.msg === 'state restored', 'g2 restoring the partitions g1 left', 60_000, before);
      await load;
      await waitForCommittedToEnd(h.admin, g.groupId, input, 90_000);
      const restored = g2.logs.filter((l) => l.msg === 'state restored');
      assert.equal((await g2.stop()).code, 0, g2.describeErrors());
      return restored;
    })();
    const [kRestored, gRestored] = await Promise.all([killRun, groupRun]);

    // R: the uninterrupted reference over the whole input.
    const r1 = await h.daemon(config(r), 'r1');
    await waitForCommittedToEnd(h.admin, r.groupId, input, 90_000);
    assert.equal((await r1.stop()).code, 0, r1.describeErrors());

    const restoredKeys = (lines: typeof kRestored): number => lines.reduce((n, l) => n + Number((l as unknown as { keys: number }).keys), 0);
    const restoreMs = (lines: typeof kRestored): string => lines.map((l) => String((l as unknown as { ms: number }).ms)).join('/');
    t.diagnostic(`k2 restored ${kRestored.length} partitions (${restoredKeys(kRestored)} keys, ms ${restoreMs(kRestored)}); ` +
      `g2 ${gRestored.length} partitions (${restoredKeys(gRestored)} keys, ms ${restoreMs(gRestored)})`);
    assert.ok(restoredKeys(kRestored) > 0, 'the restarted daemon restored state from the changelog');
    assert.ok(restoredKeys(gRestored) > 0, 'the joining daemon restored the state of the partitions it took over');

    const [kOut, kDlq, gOut, gDlq, rOut, rDlq] = await Promise.all([k, g, r].flatMap((x) => [readTopic(h.broker, x.topics.output), readTopic(h.broker, x.topics.dlq)]));
    assert.equal(rDlq!.length, 0, 'the sample input dead-letters nothing');
    assert.equal(kDlq!.length + gDlq!.length, 0);
    const reference = decisionsByEvent(rOut!);
    assert.equal(reference.size, EVENTS);
    const sawState = [...reference.values()].filter((d) => Object.values(d.state as Record<string, unknown>).some((v) => v !== null && v !== 0)).length;
    assert.ok(sawState > EVENTS / 2, `most decisions saw non-empty state (${sawState})`);
    t.diagnostic(`decisions written: K ${kOut!.length}, G ${gOut!.length} (duplicates from replays), R ${rOut!.length}`);
    compare('SIGKILL run', decisionsByEvent(kOut!), reference);
    compare('rebalanced run', decisionsByEvent(gOut!), reference);

    // Who wrote what (the record batches say): decisions the configured producer; the changelog, whose
    // writes must land whole per partition, kafkajs always (librdkafka's producer hands them to its companion).
    const changelogRecords = total(await endOffsets(h.admin, r.changelog));
    const written = await readWritten(h.broker, [r.topics.output, r.changelog], rOut!.length + changelogRecords, 60_000);
    const writers = (topic: string): string[] => [...new Set(written.filter((w) => w.topic === topic).map((w) => w.writer))];
    assert.deepEqual(writers(r.topics.output), [producer], 'the decisions\' producer');
    assert.ok(changelogRecords > 0);
    assert.deepEqual(writers(r.changelog), ['kafkajs'], 'the changelog\'s producer');

    // The final state of every key, read back from each group's changelog.
    const file = await loadPipelineFile(defaultPipelinePath);
    const compiled = await compilePipeline(file, new ModelRegistry(new URL('../../../models/registry', import.meta.url).pathname, silentLogger));
    const definition = compiled.state;
    assert.ok(definition !== null, 'the sample pipeline declares state');
    const changelog = new KafkaChangelog(kafkajsClientFactory({ brokers: [...h.broker.bootstrap], clientId: 'exactness-check', logLevel: 'nothing' }, silentLogger));
    const finalState = async (topic: string): Promise<Map<string, StateValues>> => {
      const perPartition = new Map<number, Array<{ key: Uint8Array; value: Uint8Array | null }>>();
      await changelog.read(topic, Array.from({ length: PARTITIONS }, (_, p) => p), (p, key, value) => {
        if (key === null) return;
        const list = perPartition.get(p) ?? [];
        list.push({ key, value });
        perPartition.set(p, list);
      }, new AbortController().signal);
      const all = new Map<string, StateValues>();
      for (const list of perPartition.values()) for (const [key, values] of readState(definition, list)) all.set(key, values);
      return all;
    };
    try {
      const [kState, gState, rState] = [await finalState(k.changelog), await finalState(g.changelog), await finalState(r.changelog)];
      assert.ok(rState.size > 100, `the reference holds state for ${rState.size} keys`);
      assert.deepEqual(kState, rState, 'final state after SIGKILL equals the uninterrupted run\'s');
      assert.deepEqual(gState, rState, 'final state after rebalances equals the uninterrupted run\'s');
    } finally {
      await changelog.close();
    }
    // The pipeline file as shipped is what ran (the test edited only timings).
    assert.ok((parseYaml(readFileSync(defaultPipelinePath, 'utf8')) as { state?: unknown }).state !== undefined);
  });
});
