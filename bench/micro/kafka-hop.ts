/**
 * One Kafka hop at low load, as the bench's Kafka targets make it twice (load producer → system's consumer,
 * system's producer → output reader): a kafkajs producer sends what has fallen due every tick, a kafkajs
 * consumer with a given fetch wait reads it back, and the latency runs from the send call to the read, so
 * the generator's tick is not in it. Also the producer's acknowledgement round trip. This is the measurement
 * behind README "The latency floor": on librdkafka's mock cluster a fetch that finds no records is answered
 * only when its wait ends (records that arrive meanwhile wait for the next fetch), so a hop costs about half
 * the wait plus the round trips; a real broker answers as soon as records arrive.
 * Needs the mock broker (librdkafka-dev), as the Kafka tests do.
 * Run: `node dist/bench/micro/kafka-hop.js [events/s] [fetch wait ms] [seconds] [acks] [tick ms]`
 * (default 1000 5 4 1 10), or with `--brokers host:port` last to use a cluster instead of the mock.
 */
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import { loadavg } from 'node:os';
import { LatencyRecorder } from '../latency-recorder.js';
import { MOCK_CONSUMER_TIMINGS, startMockBroker, uniqueTopic } from '../../mock-kafka/mock-broker.js';

const args = process.argv.slice(2);
const brokersAt = args.indexOf('--brokers');
const external = brokersAt >= 0 ? args[brokersAt + 1]?.split(',') : undefined;
const [rate = 1_000, waitMs = 5, seconds = 4, acks = 1, tickMs = 10] = (brokersAt >= 0 ? args.slice(0, brokersAt) : args).map(Number);
const PARTITIONS = 4;
/** Left out of the figures: the first fetches and the producer's first metadata round trips. */
const WARMUP_MS = 1_000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const mock = external === undefined ? await startMockBroker({ brokers: 1 }) : undefined;
  const brokers = external ?? mock?.bootstrap ?? [];
  const topic = uniqueTopic('hop');
  const kafka = new Kafka({ clientId: 'micro-hop', brokers: [...brokers], logLevel: logLevel.NOTHING });
  if (mock !== undefined) await mock.createTopic(topic, PARTITIONS, 1);
  else {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
    await admin.disconnect();
  }
  const producer = kafka.producer({ idempotent: false, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  const consumer = kafka.consumer({ groupId: `${topic}-g`, allowAutoTopicCreation: false, ...MOCK_CONSUMER_TIMINGS, maxWaitTimeInMs: waitMs });
  await producer.connect();
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));

  const sentAt = new Map<string, { at: number; measured: boolean }>();
  const hop = new LatencyRecorder();
  const ack = new LatencyRecorder();
  await consumer.run({
    partitionsConsumedConcurrently: PARTITIONS,
    eachBatch: async ({ batch }) => {
      const now = performance.now();
      for (const m of batch.messages) {
        const key = m.key?.toString() ?? '';
        const sent = sentAt.get(key);
        if (sent === undefined) continue;
        sentAt.delete(key);
        if (sent.measured) hop.recordMs(now - sent.at);
      }
      await Promise.resolve();
    },
  });
  await joined;

  const start = performance.now();
  let sent = 0;
  const value = 'x'.repeat(300);
  await new Promise<void>((done) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - start;
      const due = Math.floor((Math.min(elapsed, (seconds * 1_000) + WARMUP_MS) / 1_000) * rate);
      if (due > sent) {
        const at = performance.now();
        const measured = elapsed >= WARMUP_MS;
        const messages = [];
        for (; sent < due; sent++) {
          sentAt.set(`k${sent}`, { at, measured });
          messages.push({ key: `k${sent}`, value });
        }
        void producer.send({ topic, acks, messages }).then(() => { if (measured) ack.recordMs(performance.now() - at); });
      }
      if (elapsed >= (seconds * 1_000) + WARMUP_MS) {
        clearInterval(timer);
        done();
      }
    }, tickMs);
  });
  for (let waited = 0; sentAt.size > 0 && waited < 10_000; waited += 50) await sleep(50);
  const h = hop.summary();
  const a = ack.summary();
  console.log(JSON.stringify({
    broker: mock === undefined ? brokers.join(',') : 'mock', rate, fetchWaitMs: waitMs, acks, tickMs, events: h.count, unanswered: sentAt.size,
    hop: { p50Ms: h.p50Ms, p90Ms: h.p90Ms, p99Ms: h.p99Ms, meanMs: h.meanMs }, produceAck: { p50Ms: a.p50Ms, p99Ms: a.p99Ms },
    loadAverage: Math.round(loadavg()[0]! * 10) / 10,
  }));
  await consumer.disconnect();
  await producer.disconnect();
  await mock?.stop();
}

await main();
