/**
 * Records the broker refuses for themselves stay per record, against a daemon process and the mock broker
 * with injected Produce errors (MESSAGE_TOO_LARGE, Kafka error 10): the mock enforces no sizes, so the
 * refusal is injected on the broker that leads the output topics, never on the one the input is written to.
 *
 *   a round refused once → its records are sent again in halves, and all land;
 *   a decision refused → the input is dead-lettered with PRODUCE_RECORD_REJECTED;
 *   its dead letter refused too → written without payload, provenance only;
 *   that refused too → the partition halts there (paused, not committed past, readiness false), the others
 *   go on, and the daemon neither exits nor skips anything.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiKey, uniqueTopic } from '../../mock-kafka/mock-broker.js';
import { metricSum, writeDaemonConfig } from './helpers/daemon-process.js';
import { describeEachProducer } from '../helpers/producers.js';
import { startHarness, type Harness } from './helpers/harness.js';
import { committedOffsets, createTopics, transactionMessages, type Topics } from './helpers/kafka-io.js';
import { lastHeader, readRaw, type RawRecord } from './helpers/kcat-raw.js';

const MESSAGE_TOO_LARGE = 10;
const OUTPUT_LEADER = 2;

let h: Harness;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** The output and dead-letter topics once they hold exactly these counts. */
function outputs(topics: Topics, decisions: number, dead: number): Promise<{ decisions: RawRecord[]; dead: RawRecord[] }> {
  return waitFor(`${decisions} decisions and ${dead} dead letters`, async () => {
    const [d, l] = await Promise.all([readRaw(h.broker, topics.output), readRaw(h.broker, topics.dlq)]);
    if (d.length > decisions || l.length > dead) throw new Error(`more than expected: ${d.length} decisions, ${l.length} dead letters`);
    return d.length === decisions && l.length === dead ? { decisions: d, dead: l } : undefined;
  });
}

/** The dead letter of the input record at this offset of partition 0 (dead-letter partitions follow keys). */
function deadAt(dead: readonly RawRecord[], offset: number): RawRecord {
  const found = dead.filter((d) => lastHeader(d, 'verdict-source-offset') === String(offset) && lastHeader(d, 'verdict-source-partition') === '0');
  assert.equal(found.length, 1, `one dead letter for offset ${offset}`);
  return found[0]!;
}

describeEachProducer('records the broker refuses, through a daemon', { timeout: 150_000 }, (producer) => {
  before(async () => { h = await startHarness('refusals', 3); });
  after(async () => { await h.close(); });

  test('each refusal stays with its record: isolated, dead-lettered, payload dropped, then the partition halts alone', { timeout: 140_000 }, async () => {
    const topics = await createTopics(h.broker, 'refusals', 2);
    for (const p of [0, 1]) {
      await h.broker.setLeader(topics.input, p, 1);
      await h.broker.setLeader(topics.output, p, OUTPUT_LEADER);
      await h.broker.setLeader(topics.dlq, p, OUTPUT_LEADER);
    }
    const groupId = uniqueTopic('g-refusals');
    const tx = transactionMessages(8, 23).map((m) => m.value);
    const send = (partition: number, values: readonly string[]): Promise<unknown> =>
      h.producer.send({ topic: topics.input, acks: -1, messages: values.map((value, i) => ({ partition, key: `k-${partition}-${i}`, value })) });
    // librdkafka's producer sends a refused record again alone before it reports it (a broker refuses a record
    // batch whole): a refusal that sticks takes two refused requests there, one with kafkajs.
    const perRefusal = producer === 'librdkafka' ? 2 : 1;
    const refuse = (count: number): Promise<void> => h.broker.pushBrokerRequestErrors(OUTPUT_LEADER, ApiKey.Produce, count * perRefusal, MESSAGE_TOO_LARGE);

    // The instance: one block, a malformed record among valid ones, its produce refused once.
    await send(0, [tx[0]!, '{"id":"bad-1", not json', tx[1]!]);
    await h.broker.pushBrokerRequestErrors(OUTPUT_LEADER, ApiKey.Produce, 1, MESSAGE_TOO_LARGE);
    const daemon = await h.daemon(writeDaemonConfig({ producer, bootstrap: h.broker.bootstrap, groupId, topics }), 'refusals');
    let seen = await outputs(topics, 2, 1);
    assert.equal(lastHeader(deadAt(seen.dead, 1), 'verdict-error-code'), 'INPUT_DECODE_FAILED');

    // A decision refused: its input is dead-lettered with the refusal's code, byte for byte.
    await refuse(1);
    await send(0, [tx[2]!]);
    seen = await outputs(topics, 2, 2);
    const refusedDecision = deadAt(seen.dead, 3);
    assert.equal(lastHeader(refusedDecision, 'verdict-error-code'), 'PRODUCE_RECORD_REJECTED');
    assert.equal(lastHeader(refusedDecision, 'verdict-kafka-error'), 'MESSAGE_TOO_LARGE');
    assert.equal(refusedDecision.value?.toString(), tx[2]);
    assert.equal(refusedDecision.key?.toString(), 'k-0-0');
    assert.equal(lastHeader(refusedDecision, 'verdict-source-offset'), '3');

    // The decision and its dead letter refused: written without payload.
    await refuse(2);
    await send(0, [tx[3]!]);
    seen = await outputs(topics, 2, 3);
    const dropped = deadAt(seen.dead, 4);
    assert.equal(lastHeader(dropped, 'verdict-payload-dropped'), 'key,value,headers');
    assert.equal(lastHeader(dropped, 'verdict-error-code'), 'PRODUCE_RECORD_REJECTED');
    assert.equal(dropped.key?.toString(), `${topics.input}/0/4`);
    assert.deepEqual(dropped.value, Buffer.alloc(0));
    assert.equal(lastHeader(dropped, 'verdict-original-headers'), undefined, 'none of the input\'s headers');

    // A malformed record whose dead letter is refused: dropped payload, its own code kept.
    await refuse(1);
    await send(0, ['not json either']);
    seen = await outputs(topics, 2, 4);
    const droppedMalformed = deadAt(seen.dead, 5);
    assert.equal(lastHeader(droppedMalformed, 'verdict-error-code'), 'INPUT_DECODE_FAILED');
    assert.equal(lastHeader(droppedMalformed, 'verdict-kafka-error'), 'MESSAGE_TOO_LARGE');
    assert.equal(droppedMalformed.key?.toString(), `${topics.input}/0/5`);
    await waitFor('offsets committed through the refusals', async () => ((await committedOffsets(h.admin, groupId, topics.input)).get(0) === 6 ? true : undefined));
    assert.equal((await fetch(`http://127.0.0.1:${daemon.metricsPort}/readyz`)).status, 200);

    // Everything refused: partition 0 halts at offset 6; partition 1 goes on.
    await refuse(3);
    await send(0, [tx[4]!]);
    await daemon.waitForLog((l) => l.msg.startsWith('partition halted') && l['offset'] === 6 && l['partition'] === 0, 'the halt');
    await send(0, [tx[5]!]);
    await send(1, [tx[6]!]);
    seen = await outputs(topics, 3, 4);
    assert.deepEqual(seen.decisions.map((d) => d.key?.toString()).sort(), ['k-0-0', 'k-0-2', 'k-1-0']);
    await waitFor('partition 1 committed', async () => ((await committedOffsets(h.admin, groupId, topics.input)).get(1) === 1 ? true : undefined));
    assert.equal((await committedOffsets(h.admin, groupId, topics.input)).get(0), 6, 'nothing past the halt is committed');
    assert.equal((await fetch(`http://127.0.0.1:${daemon.metricsPort}/readyz`)).status, 503);
    const metrics = await daemon.scrapeMetrics();
    assert.match(metrics, new RegExp(`^verdict_partition_halted\\{topic="${topics.input}",partition="0"\\} 6$`, 'm'));
    assert.equal(metricSum(metrics, 'verdict_produce_rejected_total'), 1 + 2 + 1 + 3);
    assert.equal(daemon.alive, true, 'the daemon did not exit');

    assert.deepEqual(await daemon.stop(), { code: 0, signal: null }, daemon.describeErrors());
    assert.equal((await committedOffsets(h.admin, groupId, topics.input)).get(0), 6);
  });
});
