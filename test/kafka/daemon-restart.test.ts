/**
 * Stopping a daemon mid-stream, as real processes over TCP: killed with SIGKILL and restarted (nothing lost,
 * duplicates only of what was not committed yet), and stopped with SIGTERM under load (the drain completes,
 * commits exactly what was processed, and the next daemon decides nothing twice).
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
  committedOffsets, createTopics, endOffsets, produceSteadily, readTopic, total, transactionMessages,
  waitForCommittedProgress, waitForCommittedToEnd,
} from './helpers/kafka-io.js';

let h: Harness;

describeEachProducer('daemon stopped mid-stream', { timeout: 170_000 }, (producer) => {
  before(async () => { h = await startHarness('restart'); });
  after(async () => { await h.close(); });

  test('a daemon killed with SIGKILL and restarted loses nothing and repeats only uncommitted records', { timeout: 80_000 }, async (t) => {
    const n = 8_000;
    const topics = await createTopics(h.broker, 'sigkill', 4);
    const groupId = uniqueTopic('g-sigkill');
    // Commits a second apart leave a window of decided but uncommitted records for the kill to land in.
    const config = writeDaemonConfig({ producer, bootstrap: h.broker.bootstrap, groupId, topics, stream: { commitIntervalMs: 1_000 } });
    const first = await h.daemon(config, 'first');
    await first.waitForLog((l) => l.msg === 'partitions assigned', 'an assignment');

    // Load keeps coming while the daemon dies and while it is down.
    const load = produceSteadily(h.producer, topics.input, transactionMessages(n, 31), { batch: 200, pauseMs: 40 });
    await waitForCommittedProgress(h.admin, groupId, topics.input, 2_000, 30_000);
    await sleep(500);
    const exit = await first.kill();
    assert.equal(exit.signal, 'SIGKILL');
    // Read before anyone else joins: what the group had committed, and how far the log went, at the kill.
    const killedAt = { committed: await committedOffsets(h.admin, groupId, topics.input), end: await endOffsets(h.admin, topics.input) };
    const uncommitted = [...killedAt.end].reduce((sum, [p, end]) => sum + end - Math.max(0, killedAt.committed.get(p) ?? 0), 0);

    const second = await h.daemon(config, 'second');
    await load;
    await waitForCommittedToEnd(h.admin, groupId, topics.input, 60_000);
    assert.equal((await second.stop()).code, 0, second.describeErrors());

    const [inputs, decisions, deadLetters] = await Promise.all([
      readTopic(h.broker, topics.input), readTopic(h.broker, topics.output), readTopic(h.broker, topics.dlq),
    ]);
    const a = account(inputs, decisions, deadLetters);
    t.diagnostic(`killed after ${total(killedAt.committed)} committed of ${total(killedAt.end)} produced; ` +
      `${uncommitted} records past the committed offsets; duplicates ${a.duplicates.length}; ${describeAccounting(a)}`);
    assert.equal(inputs.length, n);
    assert.equal(a.lost.length, 0, describeAccounting(a));
    assert.equal(a.strays.length, 0, describeAccounting(a));
    assert.ok(a.duplicates.length <= uncommitted, `duplicates ${a.duplicates.length} ≤ uncommitted ${uncommitted}`);
    // Only records past the committed offset, and already in the log at the kill, can have been decided twice.
    for (const d of a.duplicates) {
      assert.ok(d.offset >= (killedAt.committed.get(d.partition) ?? 0), `duplicate ${d.partition}/${d.offset} was not committed at the kill`);
      assert.ok(d.offset < (killedAt.end.get(d.partition) ?? 0), `duplicate ${d.partition}/${d.offset} was in the log at the kill`);
    }
  });

  test('SIGTERM under load drains, commits exactly what was processed, and the next daemon repeats nothing', { timeout: 80_000 }, async (t) => {
    const n = 8_000;
    const topics = await createTopics(h.broker, 'sigterm', 4);
    const groupId = uniqueTopic('g-sigterm');
    const config = writeDaemonConfig({ producer, bootstrap: h.broker.bootstrap, groupId, topics });
    const first = await h.daemon(config, 'first');
    await first.waitForLog((l) => l.msg === 'partitions assigned', 'an assignment');

    const load = produceSteadily(h.producer, topics.input, transactionMessages(n, 32), { batch: 200, pauseMs: 40 });
    await waitForCommittedProgress(h.admin, groupId, topics.input, 2_000, 30_000);
    const exit = await first.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, first.describeErrors());
    const drained = first.logs.find((l) => l.msg === 'drained');
    assert.ok(drained !== undefined, `a "drained" log line: ${first.tail(10)}`);
    assert.equal(drained['drained'], true);
    assert.equal(drained['abandoned'], 0);

    // What the stopped daemon committed is exactly what it decided: every offset below the commit, none above.
    const committed = await committedOffsets(h.admin, groupId, topics.input);
    const inputsAtStop = await readTopic(h.broker, topics.input);
    const [decidedAtStop, deadAtStop] = await Promise.all([readTopic(h.broker, topics.output), readTopic(h.broker, topics.dlq)]);
    const atStop = account(inputsAtStop, decidedAtStop, deadAtStop);
    assert.equal(atStop.duplicates.length + atStop.strays.length, 0, describeAccounting(atStop));
    const lostAtStop = new Set(atStop.lost.map((l) => `${l.partition}/${l.offset}`));
    for (const r of inputsAtStop) {
      const below = r.offset < (committed.get(r.partition) ?? 0);
      assert.equal(!lostAtStop.has(`${r.partition}/${r.offset}`), below, `${r.partition}/${r.offset} is decided iff below the committed offset`);
    }
    t.diagnostic(`stopped with ${total(committed)} committed and decided of ${inputsAtStop.length} produced so far`);
    assert.ok(total(committed) < n, 'stopped mid-stream');

    const second = await h.daemon(config, 'second');
    await load;
    const final = await waitForCommittedToEnd(h.admin, groupId, topics.input, 60_000);
    assert.equal((await second.stop()).code, 0, second.describeErrors());
    assert.deepEqual(final, await endOffsets(h.admin, topics.input));
    const [inputs, decisions, deadLetters] = await Promise.all([
      readTopic(h.broker, topics.input), readTopic(h.broker, topics.output), readTopic(h.broker, topics.dlq),
    ]);
    const a = account(inputs, decisions, deadLetters);
    assert.equal(inputs.length, n);
    assert.equal(a.lost.length, 0, describeAccounting(a));
    assert.equal(a.duplicates.length, 0, describeAccounting(a));
    assert.equal(a.strays.length, 0, describeAccounting(a));
  });
});
