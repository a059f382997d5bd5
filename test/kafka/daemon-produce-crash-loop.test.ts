/**
 * A record whose output crashes the native producer does not crash the daemon forever. With the librdkafka
 * producer, the `kafka.produce` failpoint aborts the process (SIGABRT, as a native crash would) right before
 * the decision of one input record goes to the native produce(): the failpoint matches the event id that
 * decision carries. The daemon runs as a real process under a supervisor loop, here in the test, that
 * restarts it whenever it exits.
 *
 * The journal keeps a block in flight until its outputs are acknowledged, so each crash leaves the record in
 * a journaled range. After `crashesBeforeIsolation` crashes its range is suspect: its records are decided in
 * child processes (which do not produce: they survive), and their outputs are produced one per round, each
 * journaled ahead; the record's own output crashes that run too, and names it. The next run dead-letters it
 * byte for byte with POISON_SUSPECTED, through kafkajs (its input holds the same event id: through the
 * native producer the dead letter would crash it again), and goes on.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PoisonSuspectedError } from '../../core/errors.js';
import { FAILPOINTS_ENV } from '../../core/failpoints.js';
import { uniqueTopic } from '../../mock-kafka/mock-broker.js';
import type { AdminStatus } from '../../runtime/admin/admin-target.js';
import { metricSum, writeDaemonConfig } from './helpers/daemon-process.js';
import { assertPoisonDeadLettered, supervise } from './helpers/supervisor.js';
import { startHarness, type Harness } from './helpers/harness.js';
import { committedOffsets, createTopics, endOffsets, produce, readTopic, transactionMessages } from './helpers/kafka-io.js';

/** The poison event's id: no generated id or value holds it. */
const POISON_ID = 'poison-output-e7f3';
const CRASHES_BEFORE_ISOLATION = 2;
/** More restarts than this and the loop is not broken: the test fails. */
const MAX_RESTARTS = 6;

let h: Harness;

describe('a record whose output crashes the native producer', { timeout: 200_000 }, () => {
  before(async () => { h = await startHarness('produce-crash-loop', 1); });
  after(async () => { await h.close(); });

  test('under a supervisor that restarts it, the record is named by a crash while its output is produced alone, then dead-lettered through kafkajs; every partition is committed to its end', { timeout: 180_000 }, async (t) => {
    const n = 200;
    const topics = await createTopics(h.broker, 'producecrash', 4);
    const groupId = uniqueTopic('g-producecrash');
    const messages = transactionMessages(n, 59);
    const poisonAt = 117;
    const poisonEvent = { ...messages[poisonAt]!.event, id: POISON_ID };
    messages[poisonAt] = { ...messages[poisonAt]!, event: poisonEvent, value: JSON.stringify(poisonEvent) };
    assert.equal(messages.filter((m) => m.value.includes(POISON_ID)).length, 1, 'one input holds the id');
    await produce(h.producer, topics.input, messages);

    const config = writeDaemonConfig({
      bootstrap: h.broker.bootstrap, groupId, topics, kafka: { producer: { client: 'librdkafka' } },
      crashJournal: { crashesBeforeIsolation: CRASHES_BEFORE_ISOLATION, groupSize: 8 },
    });
    const token = 'produce-crash-admin-token';
    // The decision carries the id as `"eventId":"…"`; the input (and so its dead letter) as `"id":"…"`.
    const env = {
      [FAILPOINTS_ENV]: JSON.stringify({ 'kafka.produce': { action: 'abort', whenBytes: POISON_ID } }),
      VERDICT_ADMIN__TOKEN: token, VERDICT_ADMIN__PORT: '0',
    };

    // The supervisor: start the daemon, and start it again whenever it exits, until everything is committed.
    const { crashed, last } = await supervise(t, {
      admin: h.admin, groupId, inputTopic: topics.input, configPath: config, env, maxRestarts: MAX_RESTARTS, timeoutMs: 170_000,
    });

    // N crashes make its range suspect; one more, while its output alone was produced, names it.
    assert.equal(crashed.length, CRASHES_BEFORE_ISOLATION + 1, `${CRASHES_BEFORE_ISOLATION} crashes to a suspect range, one to name the record`);
    for (const r of crashed) assert.equal(r.exit?.signal, 'SIGABRT', `${r.daemon.name} died of the failpoint: ${r.daemon.describeErrors()}`);
    assert.ok(last.alive, `the last run is alive: ${last.describeErrors()}`);
    const namedBy = crashed[crashed.length - 1]!.daemon;
    assert.ok(namedBy.logs.some((l) => l.msg.startsWith('isolating a suspect range')), `the run that named it was isolating: ${namedBy.tail(20)}`);

    const metrics = await last.scrapeMetrics();
    const adminPort = (await last.waitForLog((l) => l.msg === 'admin API listening', 'the admin listener'))['port'];
    const status = await (await fetch(`http://127.0.0.1:${String(adminPort)}/admin/status`, { headers: { authorization: `Bearer ${token}` } })).json() as AdminStatus;
    const stopped = await last.stop();
    assert.equal(stopped.code, 0, last.describeErrors());

    const inputs = await readTopic(h.broker, topics.input);
    const poison = inputs.find((r) => r.value === messages[poisonAt]!.value);
    assert.ok(poison !== undefined, 'the poison record is in the input');
    for (const l of last.logs.filter((x) => x.msg.startsWith('the previous run crashed') || x.msg.startsWith('poison record'))) {
      const { level: _l, time: _t, pid: _p, hostname: _h, ...rest } = l;
      t.diagnostic(JSON.stringify(rest));
    }
    const named = last.logs.find((l) => l.msg.startsWith('the previous run crashed producing'));
    assert.ok(named !== undefined, `the start names the record: ${last.tail(20)}`);
    assert.deepEqual([named['partition'], named['offset']], [poison.partition, poison.offset]);
    const logged = last.logs.find((l) => l.msg.startsWith('poison record'));
    assert.ok(logged !== undefined, `a poison record log line: ${last.tail(20)}`);
    assert.deepEqual([logged['partition'], logged['offset'], logged['code']], [poison.partition, poison.offset, PoisonSuspectedError.code]);
    assert.equal(metricSum(metrics, 'verdict_poison_records_total'), 1);
    // The crashes before were consumed by the suspect range: this start counts the one that named the record.
    assert.equal(status.crashJournal?.consecutiveCrashes, 1);
    const shown = status.crashJournal?.suspects.find((s) => s.partition === poison.partition && s.from <= poison.offset && poison.offset <= s.to);
    assert.ok(shown !== undefined, `the suspect range in the status: ${JSON.stringify(status.crashJournal)}`);
    assert.equal(shown.poison, 1);
    assert.equal(shown.to, poison.offset, 'the range ends at its poison');

    assert.deepEqual(await committedOffsets(h.admin, groupId, topics.input), await endOffsets(h.admin, topics.input));

    // The poison record is on the dead-letter topic, byte for byte, with its code and provenance.
    assert.equal(inputs.length, n);
    const dead = await assertPoisonDeadLettered(t, h.broker, topics, { inputs, poison, poisonId: POISON_ID, message: /produced alone/ });
    assert.ok(dead.value !== null && dead.value.includes(POISON_ID), 'the dead letter holds the bytes that crash the native producer');
  });
});
