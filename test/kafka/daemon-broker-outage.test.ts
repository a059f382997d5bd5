/**
 * A broker down for a few seconds under load. On a three-broker mock cluster every partition leader (input,
 * decisions, dead letters) and the group coordinator are pinned to one broker, so its outage stops fetches,
 * produces, commits and heartbeats at once; the mock does not move leadership, so everything waits for it to
 * come back. Nothing may be lost.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { uniqueTopic } from '../../mock-kafka/mock-broker.js';
import { account, describe as describeAccounting } from './helpers/accounting.js';
import { writeDaemonConfig } from './helpers/daemon-process.js';
import { describeEachProducer } from '../helpers/producers.js';
import { startHarness, type Harness } from './helpers/harness.js';
import {
  committedOffsets, createTopics, produceSteadily, readTopic, total, transactionMessages, waitForCommittedProgress, waitForCommittedToEnd,
} from './helpers/kafka-io.js';

const PARTITIONS = 4;
const LEADER = 2;
const OUTAGE_MS = 5_000;

let h: Harness;

describeEachProducer('broker outage', { timeout: 150_000 }, (producer) => {
  before(async () => { h = await startHarness('outage', 3); });
  after(async () => { await h.close(); });

  test('a broker leading every partition and the group goes down under load and comes back: nothing is lost', { timeout: 120_000 }, async (t) => {
    const n = 10_000;
    const topics = await createTopics(h.broker, 'outage', PARTITIONS);
    const groupId = uniqueTopic('g-outage');
    for (const topic of [topics.input, topics.output, topics.dlq]) {
      for (let p = 0; p < PARTITIONS; p++) await h.broker.setLeader(topic, p, LEADER);
    }
    await h.broker.setCoordinator('group', groupId, LEADER);
    const daemon = await h.daemon(writeDaemonConfig({ producer, bootstrap: h.broker.bootstrap, groupId, topics }), 'outage');
    await daemon.waitForLog((l) => l.msg === 'partitions assigned', 'an assignment');

    // The test's own producer waits out the outage too (its input partitions are on the same broker).
    const load = produceSteadily(h.producer, topics.input, transactionMessages(n, 51), { batch: 100, pauseMs: 40, retryForMs: 60_000 });
    await waitForCommittedProgress(h.admin, groupId, topics.input, 2_000, 30_000);
    const committedBefore = await committedOffsets(h.admin, groupId, topics.input);
    const logsBefore = daemon.logs.length;
    await h.broker.setBrokerDown(LEADER);
    await sleep(OUTAGE_MS);
    await h.broker.setBrokerUp(LEADER);
    await load;
    await waitForCommittedToEnd(h.admin, groupId, topics.input, 90_000);
    assert.ok(daemon.alive, `the daemon survived the outage: ${daemon.describeErrors()}`);
    const metrics = await daemon.scrapeMetrics();
    assert.match(metrics, /^verdict_lifecycle_state\{state="running"\} 1$/m);
    assert.equal((await daemon.stop()).code, 0, daemon.describeErrors());

    const [inputs, decisions, deadLetters] = await Promise.all([
      readTopic(h.broker, topics.input), readTopic(h.broker, topics.output), readTopic(h.broker, topics.dlq),
    ]);
    const a = account(inputs, decisions, deadLetters);
    const during = daemon.logs.slice(logsBefore);
    const crashes = during.filter((l) => l.msg === 'consumer crashed; recreating it').length;
    const stalls = during.filter((l) => l.msg === 'consumer stalled; recreating it').length;
    const sendRetries = during.filter((l) => l.msg === 'sink send failed; retrying').length;
    const refused = during.filter((l) => l.msg.includes('ECONNREFUSED')).length;
    const commitFailures = during.filter((l) => l.msg === 'offset commit failed; will retry').length;
    const rejoins = during.filter((l) => l.msg === 'partitions assigned').length;
    t.diagnostic(`outage ${OUTAGE_MS} ms after ${total(committedBefore)} committed: ${refused} refused connections, ` +
      `${commitFailures} failed commits, ${rejoins} rejoins, consumer recreated ${crashes}× on a crash and ${stalls}× on a stall, produce rounds retried by the pipeline ${sendRetries}×; ${describeAccounting(a)}`);
    assert.ok(refused > 0, 'the daemon felt the outage');
    assert.equal(inputs.length, n);
    assert.equal(a.lost.length, 0, describeAccounting(a));
    assert.equal(a.strays.length, 0, describeAccounting(a));
    // Duplicates are allowed (at least once): an uncommitted tail is read again after the consumer restarts.
    // What was committed before the outage is never decided again.
    for (const d of a.duplicates) {
      assert.ok(d.offset >= (committedBefore.get(d.partition) ?? 0), `duplicate ${d.partition}/${d.offset} was past the commit`);
    }
  });
});
