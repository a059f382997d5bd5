/**
 * The shadow topic over Kafka: the daemon as a real process on librdkafka's mock cluster, in its default
 * placement (block workers), fraud_gbt@3 deciding and fraud_gbt@4 shadowing gbt, `output.shadowTopic` on.
 * The shadow topic is read with kcat, an independent client.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { uniqueTopic } from '../../mock-kafka/mock-broker.js';
import type { Decision } from '../../pipeline/decide/decision-actor.js';
import type { ShadowTopicValue } from '../../runtime/shadow-topic.js';
import { metricSum, writeDaemonConfig } from './helpers/daemon-process.js';
import { describeEachProducer } from '../helpers/producers.js';
import { startHarness, type Harness } from './helpers/harness.js';
import { createTopics, produce, readTopic, transactionMessages, waitForCommittedToEnd } from './helpers/kafka-io.js';

let h: Harness;

describeEachProducer('shadow topic over Kafka', { timeout: 120_000 }, (producer) => {
  before(async () => { h = await startHarness('shadow-topic', 1); });
  after(async () => { await h.close(); });

  test('every compared event has one record on the shadow topic, its primary side the decision on the output topic', { timeout: 90_000 }, async () => {
    const n = 2_000;
    const topics = await createTopics(h.broker, 'shadow', 2);
    const shadowTopic = uniqueTopic('shadow-topic');
    await h.broker.createTopic(shadowTopic, 2);
    const groupId = uniqueTopic('g-shadow');
    await produce(h.producer, topics.input, transactionMessages(n, 23));
    const config = writeDaemonConfig({
      producer,
      bootstrap: h.broker.bootstrap, groupId, topics,
      editPipeline: (p) => {
        const pipeline = p as unknown as { steps: Array<{ id: string; shadow?: string; timeoutMs?: number }>; join: { deadlineMs: number }; output: { shadowTopic?: string } };
        pipeline.steps.find((s) => s.id === 'gbt')!.shadow = 'fraud_gbt@4';
        // Relaxed bounds, so that every event's gbt step is ok on a loaded machine: an event is compared
        // only then (else it is neither compared nor counted as a dropped shadow).
        for (const s of pipeline.steps) s.timeoutMs = 2_000;
        pipeline.join.deadlineMs = 5_000;
        pipeline.output.shadowTopic = shadowTopic;
      },
    });
    const daemon = await h.daemon(config, 'shadow');
    await waitForCommittedToEnd(h.admin, groupId, topics.input, 60_000);
    // Comparisons finish after their blocks: wait until each event is compared or its shadow counted as dropped.
    let metrics = await daemon.scrapeMetrics();
    for (let i = 0; i < 100 && metricSum(metrics, 'verdict_shadow_decisions_total') + metricSum(metrics, 'verdict_shadow_dropped_total') < n; i++) {
      await sleep(100);
      metrics = await daemon.scrapeMetrics();
    }
    const compared = metricSum(metrics, 'verdict_shadow_decisions_total');
    assert.equal(compared + metricSum(metrics, 'verdict_shadow_dropped_total'), n);
    assert.ok(compared > n / 2, `${compared} events compared`);
    // The drain flushes what the workers still hold.
    assert.deepEqual(await daemon.stop(), { code: 0, signal: null }, daemon.describeErrors());

    const [decisions, shadows] = await Promise.all([readTopic(h.broker, topics.output), readTopic(h.broker, shadowTopic)]);
    assert.equal(decisions.length, n);
    assert.equal(shadows.length, compared, 'one shadow-topic record per compared event');
    const byId = new Map(decisions.map((d) => [(JSON.parse(d.value ?? '') as Decision).eventId, d]));
    const seen = new Set<string>();
    for (const r of shadows) {
      const v = JSON.parse(r.value ?? '') as ShadowTopicValue;
      assert.ok(!seen.has(v.eventId), `${v.eventId} once`);
      seen.add(v.eventId);
      const d = byId.get(v.eventId);
      assert.ok(d !== undefined, `a decision for ${v.eventId}`);
      const made = JSON.parse(d.value ?? '') as Decision;
      assert.equal(r.key, d.key, 'keyed like its decision');
      assert.deepEqual(r.headers, {});
      assert.deepEqual(v.primary, { model: 'fraud_gbt@3', action: made.action, score: made.score, reasons: made.reasons, outputs: made.outputs['gbt'] });
      assert.equal(v.shadow.model, 'fraud_gbt@4');
      assert.equal(v.agree, v.primary.action === v.shadow.action);
    }
  });
});
