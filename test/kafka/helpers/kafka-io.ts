/**
 * The tests' own Kafka I/O, independent of the code under test: kafkajs (plain producer, murmur2
 * partitioner, admin offsets) to produce and to read offsets, kcat to read whole topics (no group, so no
 * join delay, and a second client implementation checking what the daemon wrote).
 */
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Kafka, Partitioners, logLevel, type Admin, type IHeaders, type Producer } from 'kafkajs';
import { createTransactionGenerator, type Transaction } from '../../../bench/generator.js';
import { uniqueTopic, type MockBroker } from '../../../mock-kafka/mock-broker.js';

const execFileAsync = promisify(execFile);

export interface Topics {
  readonly input: string;
  readonly output: string;
  readonly dlq: string;
  /**
   * The per-key state's changelog (the sample pipeline keeps state), when created here: the daemon's own
   * topic creation cannot work on the mock (mock-broker.ts), so the test makes it and names it in the pipeline.
   */
  readonly changelog?: string;
}

/** Fresh input, decisions, dead-letter and changelog topics, created on the mock with `partitions` each. */
export async function createTopics(broker: MockBroker, prefix: string, partitions: number): Promise<Topics> {
  const topics = { input: uniqueTopic(`${prefix}-in`), output: uniqueTopic(`${prefix}-out`), dlq: uniqueTopic(`${prefix}-dlq`), changelog: uniqueTopic(`${prefix}-changelog`) };
  for (const t of [topics.input, topics.output, topics.dlq, topics.changelog]) await broker.createTopic(t, partitions);
  return topics;
}

export function newKafka(broker: MockBroker, clientId: string): Kafka {
  return new Kafka({ clientId, brokers: [...broker.bootstrap], logLevel: logLevel.NOTHING, connectionTimeout: 1_000 });
}

export function newProducer(kafka: Kafka): Producer {
  // Not idempotent: the mock cannot hand out producer ids (see mock-broker.ts).
  return kafka.producer({ idempotent: false, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
}

export interface InputMessage {
  readonly key: string | null;
  readonly value: string;
  readonly headers?: IHeaders;
}

/**
 * `n` generated card transactions (seeded), keyed by card. Trace context varies as producers vary: a third
 * carry a W3C `traceparent`, a third an `x-trace-id`, the rest none (and their decisions no trace header).
 */
export function transactionMessages(n: number, seed: number): Array<InputMessage & { event: Transaction; traceId: string | undefined }> {
  const gen = createTransactionGenerator({ seed, fraudRate: 0.05 });
  return Array.from({ length: n }, (_, i) => {
    const { event } = gen.next();
    let headers: IHeaders;
    let traceId: string | undefined;
    if (i % 3 === 0) {
      traceId = `00-${(seed * 1_000_000 + i).toString(16).padStart(32, '0')}-00f067aa0ba902b7-01`;
      headers = { traceparent: traceId, 'x-source': 'test' };
    } else if (i % 3 === 1) {
      traceId = `trace-${seed}-${i}`;
      headers = { 'x-trace-id': traceId };
    } else {
      traceId = undefined;
      headers = { 'x-source': 'test' };
    }
    return { key: event.key, value: JSON.stringify(event), headers, event, traceId };
  });
}

/** Produces in rounds of `batch` (acks -1), in order. */
export async function produce(producer: Producer, topic: string, messages: readonly InputMessage[], batch = 500): Promise<void> {
  for (let i = 0; i < messages.length; i += batch) {
    await producer.send({ topic, acks: -1, messages: messages.slice(i, i + batch).map((m) => ({ key: m.key, value: m.value, headers: m.headers ?? {} })) });
  }
}

/**
 * Produces `messages` in rounds of `batch`, `pauseMs` apart: load spread over time, so that what the test
 * does to the daemon (kill, stop, broker outage) happens mid-stream. `onRound` runs after each round.
 */
export async function produceSteadily(
  producer: Producer, topic: string, messages: readonly InputMessage[],
  options: {
    batch: number; pauseMs: number; onRound?: (sent: number) => Promise<void> | void;
    /** Keep sending a failed round for this long (a broker outage can outlast kafkajs's own retries). */
    retryForMs?: number;
  },
): Promise<void> {
  for (let i = 0; i < messages.length; i += options.batch) {
    const round = messages.slice(i, i + options.batch);
    const giveUpAt = Date.now() + (options.retryForMs ?? 0);
    for (;;) {
      try {
        await produce(producer, topic, round, options.batch);
        break;
      } catch (err) {
        // A resent round may duplicate input records; the tests count inputs from the topic itself.
        if (Date.now() >= giveUpAt) throw err;
        await sleep(200);
      }
    }
    await options.onRound?.(i + round.length);
    await sleep(options.pauseMs);
  }
}

export interface ReadRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  readonly value: string | null;
  readonly headers: Readonly<Record<string, string>>;
  /** The record's timestamp (the producer's create time), ms. */
  readonly ts: number;
}

interface KcatEnvelope {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  payload: string | null;
  ts: number;
  headers?: string[] | null;
}

/** Every record of `topic` from its start to its current end, read with kcat (no consumer group). */
export async function readTopic(broker: MockBroker, topic: string): Promise<ReadRecord[]> {
  const { stdout } = await execFileAsync(
    'kcat',
    ['-C', '-b', broker.bootstrap.join(','), '-t', topic, '-o', 'beginning', '-e', '-q', '-J'],
    { timeout: 30_000, maxBuffer: 256 * 1024 * 1024 },
  );
  return stdout.split('\n').filter((line) => line.length > 0).map((line) => {
    const e = JSON.parse(line) as KcatEnvelope;
    const headers: Record<string, string> = {};
    const flat = e.headers ?? [];
    for (let i = 0; i + 1 < flat.length; i += 2) headers[flat[i]!] = flat[i + 1]!;
    return { topic: e.topic, partition: e.partition, offset: e.offset, key: e.key, value: e.payload, headers, ts: e.ts };
  });
}

/** partition → high watermark. */
export async function endOffsets(admin: Admin, topic: string): Promise<Map<number, number>> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return new Map(offsets.map((p) => [p.partition, Number(p.high)]));
}

/** partition → the group's committed offset (-1: none). */
export async function committedOffsets(admin: Admin, groupId: string, topic: string): Promise<Map<number, number>> {
  const [result] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return new Map((result?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
}

export const total = (offsets: ReadonlyMap<number, number>): number => [...offsets.values()].reduce((a, b) => a + Math.max(0, b), 0);

/** Waits until the group has committed every partition of `topic` up to its end (everything processed). */
export async function waitForCommittedToEnd(admin: Admin, groupId: string, topic: string, timeoutMs: number): Promise<Map<number, number>> {
  const deadline = Date.now() + timeoutMs;
  let committed = new Map<number, number>();
  let end = new Map<number, number>();
  for (;;) {
    end = await endOffsets(admin, topic);
    committed = await committedOffsets(admin, groupId, topic);
    // A partition nothing was written to has nothing to commit: the group never commits it. Ends that show no
    // record at all are not an end (every caller produced first): an answer without the topic's partitions,
    // or before its writes, once let a test pass without the daemon having processed anything.
    const done = total(end) > 0 && [...end].every(([p, high]) => high === 0 || (committed.get(p) ?? -1) >= high);
    if (done) return committed;
    if (Date.now() > deadline) {
      throw new Error(`group ${groupId} committed ${JSON.stringify([...committed])} of ends ${JSON.stringify([...end])} after ${timeoutMs} ms`);
    }
    await sleep(200);
  }
}

/** Waits until the group has committed at least `atLeast` records of `topic` in all (progress mid-stream). */
export async function waitForCommittedProgress(admin: Admin, groupId: string, topic: string, atLeast: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (total(await committedOffsets(admin, groupId, topic)) < atLeast) {
    if (Date.now() > deadline) throw new Error(`group ${groupId} did not commit ${atLeast} records within ${timeoutMs} ms`);
    await sleep(100);
  }
}
