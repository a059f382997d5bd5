/**
 * A record that crashes the whole daemon process does not crash it forever. One input value makes any
 * process running a model batch that holds it abort (the `model.run` failpoint: SIGABRT, as a native crash
 * would). The daemon runs as a real process under a supervisor loop, here in the test, that restarts it
 * whenever it exits, as systemd or Kubernetes would. Each run dies on the record, until the crash journal
 * has seen its range in flight in `crashesBeforeIsolation` consecutive crashes; the next run processes that
 * range in child processes, finds the record, dead-letters it byte for byte with POISON_SUSPECTED and its
 * provenance, and goes on.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PoisonSuspectedError } from '../../core/errors.js';
import { FAILPOINTS_ENV } from '../../core/failpoints.js';
import { uniqueTopic } from '../../mock-kafka/mock-broker.js';
import type { AdminStatus } from '../../runtime/admin/admin-target.js';
import { metricSum, writeDaemonConfig } from './helpers/daemon-process.js';
import { assertPoisonDeadLettered, supervise } from './helpers/supervisor.js';
import { describeEachProducer } from '../helpers/producers.js';
import { startHarness, type Harness } from './helpers/harness.js';
import { committedOffsets, createTopics, endOffsets, produce, readTopic, transactionMessages } from './helpers/kafka-io.js';

/** ip_risk is generated with two decimals: three never collide with a generated value, even as float32. */
const POISON = 0.123;
const CRASHES_BEFORE_ISOLATION = 2;
/** More restarts than this and the loop is not broken: the test fails. */
const MAX_RESTARTS = 6;

let h: Harness;

describeEachProducer('a record that crashes the daemon process', { timeout: 170_000 }, (producer) => {
  before(async () => { h = await startHarness('crash-loop', 1); });
  after(async () => { await h.close(); });

  test('under a supervisor that restarts it, the poison record ends on the dead-letter topic and every partition is committed to its end', { timeout: 150_000 }, async (t) => {
    const n = 200;
    const topics = await createTopics(h.broker, 'crashloop', 4);
    const groupId = uniqueTopic('g-crashloop');
    const messages = transactionMessages(n, 53);
    const poisonAt = 117;
    const poisonEvent = { ...messages[poisonAt]!.event, ip_risk: POISON };
    messages[poisonAt] = { ...messages[poisonAt]!, event: poisonEvent, value: JSON.stringify(poisonEvent) };
    await produce(h.producer, topics.input, messages);

    const config = writeDaemonConfig({
      producer,
      bootstrap: h.broker.bootstrap, groupId, topics, crashJournal: { crashesBeforeIsolation: CRASHES_BEFORE_ISOLATION, groupSize: 8 },
    });
    // The admin API on a port of its own (any free one), for its status.
    const token = 'crash-loop-admin-token';
    const env = {
      [FAILPOINTS_ENV]: JSON.stringify({ 'model.run': { action: 'abort', whenValue: POISON } }),
      VERDICT_ADMIN__TOKEN: token, VERDICT_ADMIN__PORT: '0',
    };

    // The supervisor: start the daemon, and start it again whenever it exits, until everything is committed.
    const { crashed, last } = await supervise(t, {
      admin: h.admin, groupId, inputTopic: topics.input, configPath: config, env, maxRestarts: MAX_RESTARTS, timeoutMs: 140_000,
    });

    // Every run but the last died of the record; the last one is alive, isolated it and went on.
    assert.equal(crashed.length, CRASHES_BEFORE_ISOLATION, `a crash per run until the range was in flight in ${CRASHES_BEFORE_ISOLATION} crashes`);
    for (const r of crashed) assert.equal(r.exit?.signal, 'SIGABRT', `${r.daemon.name} died of the failpoint: ${r.daemon.describeErrors()}`);
    assert.ok(last.alive, `the last run is alive: ${last.describeErrors()}`);

    // Counted and logged, with the offset, and shown in the admin status.
    const metrics = await last.scrapeMetrics();
    const adminPort = (await last.waitForLog((l) => l.msg === 'admin API listening', 'the admin listener'))['port'];
    const status = await (await fetch(`http://127.0.0.1:${String(adminPort)}/admin/status`, { headers: { authorization: `Bearer ${token}` } })).json() as AdminStatus;
    const stopped = await last.stop();
    assert.equal(stopped.code, 0, last.describeErrors());

    const inputs = await readTopic(h.broker, topics.input);
    const poison = inputs.find((r) => r.value === messages[poisonAt]!.value);
    assert.ok(poison !== undefined, 'the poison record is in the input');
    const isolations = metrics.split('\n').filter((l) => l.startsWith('verdict_poison_isolations_total{'));
    assert.ok(isolations.some((l) => l.includes(`partition="${poison.partition}"`) && l.endsWith(' 1')), `an isolation of partition ${poison.partition}: ${isolations.join(' | ')}`);
    assert.equal(metricSum(metrics, 'verdict_poison_records_total'), 1);
    assert.equal(metricSum(metrics, 'verdict_crash_journal_consecutive_crashes'), CRASHES_BEFORE_ISOLATION);
    for (const l of last.logs.filter((x) => x.msg === 'suspect records isolated' || x.msg.startsWith('the previous run crashed'))) {
      const { level: _l, time: _t, pid: _p, hostname: _h, ...rest } = l;
      t.diagnostic(JSON.stringify(rest));
    }
    const logged = last.logs.find((l) => l.msg.startsWith('poison record'));
    assert.ok(logged !== undefined, `a poison record log line: ${last.tail(20)}`);
    assert.equal(logged['offset'], poison.offset);
    assert.equal(logged['partition'], poison.partition);
    assert.equal(logged['code'], PoisonSuspectedError.code);
    assert.equal(status.crashJournal?.consecutiveCrashes, CRASHES_BEFORE_ISOLATION);
    const shown = status.crashJournal?.suspects.find((s) => s.partition === poison.partition);
    assert.ok(shown !== undefined && shown.from <= poison.offset && poison.offset <= shown.to, `the suspect range in the status: ${JSON.stringify(status.crashJournal)}`);
    assert.equal(shown.poison, 1);

    // The partition's committed offset reached its end, like every other.
    assert.deepEqual(await committedOffsets(h.admin, groupId, topics.input), await endOffsets(h.admin, topics.input));

    // The poison record is on the dead-letter topic, byte for byte, with its code and provenance.
    assert.equal(inputs.length, n);
    await assertPoisonDeadLettered(t, h.broker, topics, { inputs, poison, poisonId: String(poisonEvent['id']), message: /SIGABRT/ });
  });
});
