/**
 * The daemon embedded from code: `createDaemon` with a config object (not a file), in this process, against
 * the mock broker over TCP. Transactions in, decisions read back with kcat, `/metrics` scraped over HTTP,
 * and a graceful stop that reports everything drained.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createDaemon } from '../../index.js';
import { uniqueTopic } from '../../mock-kafka/mock-broker.js';
import { daemonConfigObject, metricSum } from './helpers/daemon-process.js';
import { describeEachProducer } from '../helpers/producers.js';
import { startHarness, type Harness } from './helpers/harness.js';
import { createTopics, produce, readTopic, transactionMessages, waitForCommittedToEnd } from './helpers/kafka-io.js';

let h: Harness;

describeEachProducer('createDaemon', { timeout: 120_000 }, (producer) => {
  before(async () => { h = await startHarness('embed', 1); });
  after(async () => { await h.close(); });

  test('a daemon from a config object decides transactions, serves /metrics and stops drained', { timeout: 100_000 }, async () => {
    const topics = await createTopics(h.broker, 'embed', 2);
    const groupId = uniqueTopic('g-embed');
    const { config } = daemonConfigObject({ producer, bootstrap: h.broker.bootstrap, groupId, topics });
    const messages = transactionMessages(2, 11);

    const daemon = await createDaemon(config);
    assert.equal(daemon.state, 'starting');
    assert.equal(daemon.metricsPort, undefined, 'nothing listens before start()');
    let stopped = false;
    try {
      await daemon.start();
      assert.equal(daemon.state, 'running');
      await produce(h.producer, topics.input, messages);
      await waitForCommittedToEnd(h.admin, groupId, topics.input, 45_000);

      const decisions = await readTopic(h.broker, topics.output);
      assert.deepEqual(decisions.map((d) => d.key).sort(), messages.map((m) => m.key).sort(), 'one decision per transaction, keyed by card');
      for (const d of decisions) {
        const decision = JSON.parse(d.value ?? 'null') as { action?: unknown };
        assert.equal(typeof decision.action, 'string', `a decision with an action: ${d.value}`);
      }
      assert.deepEqual(await readTopic(h.broker, topics.dlq), [], 'no dead letters');

      const response = await fetch(`http://127.0.0.1:${daemon.metricsPort}/metrics`);
      assert.equal(response.status, 200);
      const metrics = await response.text();
      assert.equal(metricSum(metrics, 'verdict_events_in_total'), 2);
      assert.equal(metricSum(metrics, 'verdict_decisions_total'), 2);
      assert.equal(metricSum(metrics, 'verdict_lifecycle_state'), 1, 'one lifecycle state is current');

      const report = await daemon.stop();
      stopped = true;
      assert.deepEqual(report, { drained: true, abandoned: 0 });
      assert.equal(daemon.state, 'stopped');
      assert.equal(await daemon.stop(), report, 'stop is idempotent');
    } finally {
      if (!stopped) await daemon.stop();
    }
  });
});
