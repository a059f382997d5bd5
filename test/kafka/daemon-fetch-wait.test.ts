/**
 * A daemon whose config leaves `kafka.maxWaitTimeInMs` out, on librdkafka's mock cluster (which answers a
 * fetch only when its wait ends, so Kafka's 500 ms default would put half a second on every event): it
 * recognises the mock, says so in an info line and in /admin/status, fetches with the short mock wait, and
 * decides. createDaemon in this process, the mock broker over TCP.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { formatStatus } from '../../cli/admin-format.js';
import { MOCK_FETCH_WAIT_MS } from '../../config/kafka-options.js';
import { createDaemon } from '../../index.js';
import { uniqueTopic } from '../../mock-kafka/mock-broker.js';
import type { AdminStatus } from '../../runtime/admin/admin-target.js';
import { daemonConfigObject } from './helpers/daemon-process.js';
import { startHarness, type Harness } from './helpers/harness.js';
import { createTopics, produce, readTopic, transactionMessages, waitForCommittedToEnd } from './helpers/kafka-io.js';

const TOKEN = 'fetch-wait-test-token-2b7e41';

interface LogLine { readonly level: number; readonly msg: string; readonly component?: string; readonly [field: string]: unknown }

let h: Harness;

describe('the fetch wait of a daemon on the mock broker', { timeout: 120_000 }, () => {
  before(async () => { h = await startHarness('fetch-wait', 1); });
  after(async () => { await h.close(); });

  test('left out of the config: the mock is recognised, its short wait used and reported, and events are decided', { timeout: 100_000 }, async () => {
    const topics = await createTopics(h.broker, 'fetch-wait', 2);
    const groupId = uniqueTopic('g-fetch-wait');
    const { config } = daemonConfigObject({ bootstrap: h.broker.bootstrap, groupId, topics });
    // The helper sets the tests' mock timings (a 100 ms wait): this daemon gets none.
    const { maxWaitTimeInMs: _mockTimings, ...kafka } = config.kafka;
    const logs: LogLine[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => { logs.push(JSON.parse(line) as LogLine); } });
    const daemon = await createDaemon({ ...config, kafka, admin: { host: '127.0.0.1', port: 0 } }, { logger, env: { VERDICT_ADMIN__TOKEN: TOKEN } });
    let stopped = false;
    try {
      await daemon.start();
      const messages = transactionMessages(3, 29);
      await produce(h.producer, topics.input, messages);
      await waitForCommittedToEnd(h.admin, groupId, topics.input, 45_000);
      const decisions = await readTopic(h.broker, topics.output);
      assert.deepEqual(decisions.map((d) => d.key).sort(), messages.map((m) => m.key).sort(), 'every event decided');

      const response = await fetch(`http://127.0.0.1:${daemon.adminPort}/admin/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(response.status, 200);
      const status = await response.json() as AdminStatus;
      assert.equal(status.fetchWait?.ms, MOCK_FETCH_WAIT_MS);
      assert.equal(status.fetchWait?.source, 'mock-broker');
      assert.match(status.fetchWait?.clusterId ?? '', /^mockCluster[0-9a-f]+$/);
      assert.match(formatStatus(status), new RegExp(`fetch wait ${MOCK_FETCH_WAIT_MS} ms \\(librdkafka's mock cluster detected`));

      const line = logs.find((l) => l['chosenFor'] === 'mock-broker');
      assert.ok(line, 'an info line says the mock was recognised');
      assert.equal(line.level, 30);
      assert.equal(line['maxWaitTimeInMs'], MOCK_FETCH_WAIT_MS);
      assert.match(String(line.component), /kafka_source$/);

      stopped = true;
      assert.deepEqual(await daemon.stop(), { drained: true, abandoned: 0 });
    } finally {
      if (!stopped) await daemon.stop();
    }
  });
});
