/**
 * Scale-out: two daemon processes in one consumer group split the input's partitions; when one leaves
 * (gracefully, then by SIGKILL) the other takes them all over, and nothing is lost. The mock's rebalances
 * take several seconds, hence the generous per-test timeouts.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { uniqueTopic } from '../../mock-kafka/mock-broker.js';
import { account, describe as describeAccounting } from './helpers/accounting.js';
import { writeDaemonConfig, type DaemonProcess } from './helpers/daemon-process.js';
import { describeEachProducer, type TestProducerClient } from '../helpers/producers.js';
import { startHarness, type Harness } from './helpers/harness.js';
import {
  committedOffsets, createTopics, endOffsets, produceSteadily, readTopic, total, transactionMessages, waitForCommittedProgress,
  waitForCommittedToEnd, type Topics,
} from './helpers/kafka-io.js';

const PARTITIONS = 6;
const ALL = Array.from({ length: PARTITIONS }, (_, p) => p);

let h: Harness;

async function waitFor(condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** Starts two daemons in one group and waits until each owns a share and together they own every partition. */
async function startPair(topics: Topics, groupId: string, producer: TestProducerClient): Promise<[DaemonProcess, DaemonProcess]> {
  const config = writeDaemonConfig({ producer, bootstrap: h.broker.bootstrap, groupId, topics });
  const [a, b] = await Promise.all([h.daemon(config, 'a'), h.daemon(config, 'b')]);
  const split = (): boolean => {
    const [x, y] = [a.currentAssignment(topics.input), b.currentAssignment(topics.input)];
    return x.length > 0 && y.length > 0 && [...x, ...y].sort((m, n) => m - n).join() === ALL.join();
  };
  await waitFor(split, 'the partitions split between both daemons', 40_000);
  return [a, b];
}

async function settle(topics: Topics, groupId: string, n: number) {
  await waitForCommittedToEnd(h.admin, groupId, topics.input, 60_000);
  const [inputs, decisions, deadLetters] = await Promise.all([
    readTopic(h.broker, topics.input), readTopic(h.broker, topics.output), readTopic(h.broker, topics.dlq),
  ]);
  assert.equal(inputs.length, n);
  return account(inputs, decisions, deadLetters);
}

describeEachProducer('two daemons in one group', { timeout: 170_000 }, (producer) => {
  before(async () => { h = await startHarness('group'); });
  after(async () => { await h.close(); });

  test('split the partitions; when one stops gracefully the other takes over and nothing is lost', { timeout: 80_000 }, async (t) => {
    const n = 12_000;
    const topics = await createTopics(h.broker, 'group-stop', PARTITIONS);
    const groupId = uniqueTopic('g-group-stop');
    const [a, b] = await startPair(topics, groupId, producer);
    const shares = `a ${a.currentAssignment(topics.input).join(',')} | b ${b.currentAssignment(topics.input).join(',')}`;

    const load = produceSteadily(h.producer, topics.input, transactionMessages(n, 41), { batch: 150, pauseMs: 50 });
    await waitForCommittedProgress(h.admin, groupId, topics.input, 3_000, 30_000);
    // Both were deciding: each committed its own partitions.
    const committedBoth = await committedOffsets(h.admin, groupId, topics.input);
    assert.ok(a.currentAssignment(topics.input).some((p) => (committedBoth.get(p) ?? -1) > 0), 'a committed progress');
    assert.ok(b.currentAssignment(topics.input).some((p) => (committedBoth.get(p) ?? -1) > 0), 'b committed progress');

    assert.deepEqual(await a.stop(), { code: 0, signal: null }, a.describeErrors());
    const stoppedAt = { committed: await committedOffsets(h.admin, groupId, topics.input), end: await endOffsets(h.admin, topics.input) };
    await waitFor(() => b.currentAssignment(topics.input).join() === ALL.join(), 'b to own every partition', 40_000);
    await load;
    const acc = await settle(topics, groupId, n);
    assert.equal((await b.stop()).code, 0, b.describeErrors());

    t.diagnostic(`split ${shares}; a stopped at ${total(stoppedAt.committed)} committed of ${total(stoppedAt.end)}; ${describeAccounting(acc)}`);
    assert.equal(acc.lost.length, 0, describeAccounting(acc));
    assert.equal(acc.strays.length, 0, describeAccounting(acc));
    // A stopped by draining and committing everything it decided, so repeats can only come from b losing its
    // uncommitted tail in the rebalance: offsets past what the group had committed when a left.
    for (const d of acc.duplicates) {
      assert.ok(d.offset >= (stoppedAt.committed.get(d.partition) ?? 0), `duplicate ${d.partition}/${d.offset} was past the commit`);
    }
  });

  test('when one is killed with SIGKILL the other takes over and nothing is lost', { timeout: 80_000 }, async (t) => {
    const n = 12_000;
    const topics = await createTopics(h.broker, 'group-kill', PARTITIONS);
    const groupId = uniqueTopic('g-group-kill');
    const [a, b] = await startPair(topics, groupId, producer);

    const load = produceSteadily(h.producer, topics.input, transactionMessages(n, 42), { batch: 150, pauseMs: 50 });
    await waitForCommittedProgress(h.admin, groupId, topics.input, 3_000, 30_000);
    const bShare = new Set(b.currentAssignment(topics.input));
    assert.equal((await b.kill()).signal, 'SIGKILL');
    const killedAt = { committed: await committedOffsets(h.admin, groupId, topics.input), end: await endOffsets(h.admin, topics.input) };
    // The group notices only when b's session expires, then a is given everything.
    await waitFor(() => a.currentAssignment(topics.input).join() === ALL.join(), 'a to own every partition', 40_000);
    await load;
    const acc = await settle(topics, groupId, n);
    assert.equal((await a.stop()).code, 0, a.describeErrors());

    t.diagnostic(`b killed at ${total(killedAt.committed)} committed of ${total(killedAt.end)}; ${describeAccounting(acc)}`);
    assert.equal(acc.lost.length, 0, describeAccounting(acc));
    assert.equal(acc.strays.length, 0, describeAccounting(acc));
    for (const d of acc.duplicates) {
      assert.ok(d.offset >= (killedAt.committed.get(d.partition) ?? 0), `duplicate ${d.partition}/${d.offset} was past the commit at the kill`);
      // b's repeats were read by b, so before the kill; a kept deciding its own until the rebalance.
      if (bShare.has(d.partition)) assert.ok(d.offset < (killedAt.end.get(d.partition) ?? 0), `duplicate ${d.partition}/${d.offset} was in the log at the kill`);
    }
  });
});
