/**
 * The daemon as a real process over TCP against librdkafka's mock cluster: a normal run (keys, headers,
 * metrics), produce errors injected under load, and interop with an independent client (kcat). Every test
 * has its own topics and group; counts are exact.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiKey, KafkaErrorCode, uniqueTopic } from '../../mock-kafka/mock-broker.js';
import { account, describe as describeAccounting } from './helpers/accounting.js';
import { metricSum, writeDaemonConfig } from './helpers/daemon-process.js';
import { describeEachProducer } from '../helpers/producers.js';
import { startHarness, type Harness } from './helpers/harness.js';
import {
  createTopics, produce, produceSteadily, readTopic, transactionMessages, waitForCommittedToEnd,
} from './helpers/kafka-io.js';

let h: Harness;

describeEachProducer('daemon delivery over Kafka', { timeout: 170_000 }, (producer) => {
  before(async () => { h = await startHarness('delivery'); });
  after(async () => { await h.close(); });

  test('a normal run decides every event once, keyed like its input, with the verdict headers', { timeout: 60_000 }, async (t) => {
    const n = 4_000;
    const topics = await createTopics(h.broker, 'normal', 4);
    const groupId = uniqueTopic('g-normal');
    const messages = transactionMessages(n, 11);
    await produce(h.producer, topics.input, messages);

    const daemon = await h.daemon(writeDaemonConfig({ producer, bootstrap: h.broker.bootstrap, groupId, topics }), 'normal');
    await waitForCommittedToEnd(h.admin, groupId, topics.input, 45_000);

    // The metrics endpoint, scraped over HTTP while the daemon runs.
    const metrics = await daemon.scrapeMetrics();
    assert.match(metrics, /^verdict_lifecycle_state\{state="running"\} 1$/m);
    assert.equal(metricSum(metrics, 'verdict_decisions_total'), n);
    assert.equal(metricSum(metrics, 'verdict_events_in_total'), n);
    assert.equal((await fetch(`http://127.0.0.1:${daemon.metricsPort}/readyz`)).status, 200);

    const exit = await daemon.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, daemon.describeErrors());

    const [inputs, decisions, deadLetters] = await Promise.all([
      readTopic(h.broker, topics.input), readTopic(h.broker, topics.output), readTopic(h.broker, topics.dlq),
    ]);
    const a = account(inputs, decisions, deadLetters);
    assert.equal(a.lost.length, 0, describeAccounting(a));
    assert.equal(a.duplicates.length, 0, describeAccounting(a));
    assert.equal(a.strays.length, 0, describeAccounting(a));
    assert.equal(decisions.length, n);
    assert.equal(deadLetters.length, 0);

    const sent = new Map(messages.map((m) => [m.event.id, m]));
    const inputPartition = new Map(inputs.map((r) => [(JSON.parse(r.value ?? '{}') as { id: string }).id, r.partition]));
    for (const d of decisions) {
      const id = d.headers['verdict-event-id'];
      assert.ok(id !== undefined, 'verdict-event-id header');
      const input = sent.get(id);
      assert.ok(input !== undefined, `decision for an event that was sent: ${id}`);
      const value = JSON.parse(d.value ?? '') as { eventId: string; key: string; pipeline: string; action: string; policy: string; models: Record<string, string> };
      assert.equal(value.eventId, id);
      assert.equal(d.key, input.key, 'decision keyed like its input');
      assert.equal(value.key, input.key);
      // Same key, same partition count, same murmur2 partitioner: the decision lands where its input was.
      assert.equal(d.partition, inputPartition.get(id));
      assert.equal(d.headers['verdict-trace-id'], input.traceId);
      assert.equal(value.pipeline, 'card-risk');
      // Pipeline and model versions are in the value; their headers are opt-in (output.headers).
      assert.deepEqual(Object.keys(d.headers).sort(), input.traceId === undefined ? ['verdict-event-id'] : ['verdict-event-id', 'verdict-trace-id']);
      // Under load a step can miss the join deadline: the versions name the steps that were asked, and a
      // decision by the rules had at least one. On a starved machine a block can time out before any step
      // is asked; the incomplete policy then decided, with no versions.
      const versions = Object.entries(value.models).map(([s, m]) => `${s}=${m}`).join(',');
      assert.match(versions, /^((gbt=fraud_gbt|anomaly=txn_autoencoder|mlp=fraud_mlp)@\d+,?)*$/);
      if (value.policy === 'rules') assert.notEqual(versions, '', d.value ?? '');
      assert.ok(['approve', 'review', 'decline'].includes(value.action));
    }
    // End-to-end throughput: first to last decision by their produce timestamps (the group join excluded).
    const times = decisions.map((d) => d.ts);
    const spanMs = Math.max(...times) - Math.min(...times);
    t.diagnostic(`throughput over Kafka: ${n} events in ${spanMs} ms = ${Math.round(n / Math.max(spanMs, 1) * 1000)} events/s`);
  });

  test('injected produce errors (NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT) are retried under load and lose nothing', { timeout: 60_000 }, async (t) => {
    const n = 3_000;
    const topics = await createTopics(h.broker, 'produce-errors', 4);
    const groupId = uniqueTopic('g-produce-errors');
    // The daemon's output lives on broker 2, the test's input on broker 1: the errors injected into broker
    // 2's Produce requests hit the daemon only, while the test keeps producing load.
    for (let p = 0; p < 4; p++) {
      await h.broker.setLeader(topics.input, p, 1);
      await h.broker.setLeader(topics.output, p, 2);
      await h.broker.setLeader(topics.dlq, p, 2);
    }
    const daemon = await h.daemon(writeDaemonConfig({ producer, bootstrap: h.broker.bootstrap, groupId, topics }), 'produce-errors');
    await daemon.waitForLog((l) => l.msg === 'partitions assigned', 'an assignment');

    // Eight failures in a row outlast kafkajs's own five retries, so the pipeline's retry is exercised too.
    const burst = [
      KafkaErrorCode.NOT_LEADER_OR_FOLLOWER, KafkaErrorCode.REQUEST_TIMED_OUT, KafkaErrorCode.NOT_LEADER_OR_FOLLOWER, KafkaErrorCode.REQUEST_TIMED_OUT,
    ];
    const injected: number[] = [];
    await produceSteadily(h.producer, topics.input, transactionMessages(n, 12), {
      batch: 150, pauseMs: 50,
      onRound: async (sent) => {
        if (sent % 600 !== 0) return;
        for (const code of burst) {
          await h.broker.pushBrokerRequestErrors(2, ApiKey.Produce, 2, code);
          injected.push(code, code);
        }
      },
    });
    await waitForCommittedToEnd(h.admin, groupId, topics.input, 45_000);
    // kafkajs logs each failed Produce request before retrying it; the pipeline logs each round it retries
    // after kafkajs gave up.
    const failedRequests = daemon.logs.filter((l) => l.msg.startsWith('Failed to send messages'));
    const retried = daemon.logs.filter((l) => l.msg === 'sink send failed; retrying');
    const exit = await daemon.stop();
    assert.equal(exit.code, 0, daemon.describeErrors());

    const [inputs, decisions, deadLetters] = await Promise.all([
      readTopic(h.broker, topics.input), readTopic(h.broker, topics.output), readTopic(h.broker, topics.dlq),
    ]);
    const a = account(inputs, decisions, deadLetters);
    t.diagnostic(`${injected.length} produce errors injected; ${failedRequests.length} failed Produce requests retried by kafkajs, ` +
      `${retried.length} produce rounds retried by the pipeline; ${describeAccounting(a)}`);
    // Every injected error failed one of the daemon's Produce requests (the only ones broker 2 serves), which
    // was then retried: a producer that may not retry gets through to broker 2 only once none is left.
    const probe = h.kafka.producer({ idempotent: false, allowAutoTopicCreation: false, retry: { retries: 0 } });
    await probe.connect();
    try {
      await probe.send({ topic: topics.output, acks: -1, messages: [{ partition: 0, key: 'probe', value: 'probe' }] });
    } finally {
      await probe.disconnect();
    }
    // kafkajs logs each failed Produce request; librdkafka retries without a log line Verdict sees.
    if (producer === 'kafkajs') assert.equal(failedRequests.length, injected.length);
    assert.ok(retried.every((l) => l['code'] === 'TRANSPORT_FAILED'));
    assert.equal(inputs.length, n);
    assert.equal(a.lost.length, 0, describeAccounting(a));
    // An error response means the broker appended nothing, so a retried round is written once.
    assert.equal(a.duplicates.length, 0, describeAccounting(a));
    assert.equal(a.strays.length, 0, describeAccounting(a));
    assert.equal(decisions.length + deadLetters.length, n);
  });

  test('kcat produces the input and reads the decisions', { timeout: 60_000 }, async () => {
    const n = 300;
    const topics = await createTopics(h.broker, 'kcat', 3);
    const groupId = uniqueTopic('g-kcat');
    const messages = transactionMessages(n, 13);
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    // kcat splits each line at the first ':' into key and value (the key, a card id, has none).
    await kcat(['-P', '-b', h.broker.bootstrap.join(','), '-t', topics.input, '-K:', '-H', `traceparent=${traceparent}`],
      messages.map((m) => `${m.key}:${m.value}\n`).join(''));

    const daemon = await h.daemon(writeDaemonConfig({ producer, bootstrap: h.broker.bootstrap, groupId, topics }), 'kcat');
    await waitForCommittedToEnd(h.admin, groupId, topics.input, 45_000);
    assert.equal((await daemon.stop()).code, 0, daemon.describeErrors());

    const out = await kcat(['-C', '-b', h.broker.bootstrap.join(','), '-t', topics.output, '-o', 'beginning', '-e', '-q', '-f', '%k\t%h\t%s\n']);
    const lines = out.split('\n').filter((l) => l.length > 0);
    assert.equal(lines.length, n);
    const byId = new Map(messages.map((m) => [m.event.id, m]));
    const seen = new Set<string>();
    for (const line of lines) {
      const [key, headerCsv, value] = line.split('\t') as [string, string, string];
      const headers = Object.fromEntries(headerCsv.split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      const decision = JSON.parse(value) as { eventId: string; key: string; action: string };
      const input = byId.get(decision.eventId);
      assert.ok(input !== undefined, `decision for a sent event: ${decision.eventId}`);
      assert.ok(!seen.has(decision.eventId), `one decision per event: ${decision.eventId}`);
      seen.add(decision.eventId);
      assert.equal(key, input.key);
      assert.equal(headers['verdict-event-id'], decision.eventId);
      assert.equal(headers['verdict-trace-id'], traceparent);
      assert.equal(headers['verdict-pipeline'], undefined, 'opt-in header absent by default');
    }
    assert.equal(seen.size, n);
  });
});

/** Runs kcat with `stdin` piped in; resolves with its stdout, fails on a non-zero exit. */
async function kcat(args: readonly string[], stdin = ''): Promise<string> {
  const child = spawn('kcat', [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  child.stdin.end(stdin);
  const timer = sleep(30_000, 'timeout' as const, { ref: false });
  const code = await Promise.race([new Promise<number | null>((resolve) => child.once('close', resolve)), timer]);
  if (code === 'timeout') {
    child.kill('SIGKILL');
    throw new Error(`kcat ${args.join(' ')} timed out: ${stderr}`);
  }
  assert.equal(code, 0, `kcat ${args.join(' ')} failed: ${stderr}`);
  return stdout;
}
