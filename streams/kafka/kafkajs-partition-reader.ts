/**
 * Reads given partitions of a topic from given start offsets to given end offsets, over kafkajs: how a
 * changelog is read back on a restore (streams/kafka/kafka-changelog.ts).
 *
 * kafkajs has no manual assignment: a consumer always joins a group, and joining a fresh group waits for the
 * broker's initial rebalance delay (`group.initial.rebalance.delay.ms`, 3 s by default, as on the mock). So
 * one reader per topic joins once, in a group of its own (a fresh id, never committed to) whose assigner
 * hands its one member every partition; every partition stays paused until a read seeks it to its start
 * and resumes it, and is paused again once it reached its end. A rebalance then costs a seek, not a join.
 */
import { randomUUID } from 'node:crypto';
import { AssignerProtocol, type Consumer, type EachBatchPayload, type Kafka, type PartitionAssigner } from 'kafkajs';
import { StateRestoreError, TransportError, type VerdictError } from '../../core/errors.js';
import { toTransportError } from './kafkajs-errors.js';

/** The assigner's protocol name: members of a read group all use it. */
const PROTOCOL = 'verdict-partition-read';

/** Every partition of the subscribed topics to the first member (a read group has one). */
const assignAll: PartitionAssigner = ({ cluster }) => ({
  name: PROTOCOL,
  version: 1,
  assign: ({ members, topics }) => Promise.resolve(members.map((m, i) => ({
    memberId: m.memberId,
    memberAssignment: AssignerProtocol.MemberAssignment.encode({
      version: 1,
      assignment: i === 0 ? Object.fromEntries(topics.map((t) => [t, cluster.findTopicPartitionMetadata(t).map((p) => p.partitionId)])) : {},
      userData: Buffer.alloc(0),
    }),
  }))),
  protocol: ({ topics }) => ({ name: PROTOCOL, metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }) }),
});

/** One partition being read: from `start` to `end` (exclusive). */
interface Target {
  readonly start: number;
  readonly end: number;
  readonly onRecord: (partition: number, key: Buffer | null, value: Buffer | null) => void;
  readonly done: (error?: VerdictError) => void;
}

export interface PartitionRange {
  /** The first offset to read (the log start offset). */
  readonly start: number;
  /** The end offset, exclusive (the high watermark when the read was asked). */
  readonly end: number;
}

export class KafkajsPartitionReader {
  readonly #kafka: Kafka;
  readonly #groupPrefix: string;
  readonly #topic: string;
  readonly #targets = new Map<number, Target>();
  #consumer: Consumer | undefined;
  #started: Promise<Consumer> | undefined;

  constructor(kafka: Kafka, clientId: string, topic: string) {
    this.#kafka = kafka;
    this.#groupPrefix = `${clientId}.partition-read`;
    this.#topic = topic;
  }

  /**
   * Reads the partitions in `ranges`, each from its start to its end, in offset order (`onRecord`). Resolves
   * once every one reached its end; rejects with a TransportError when the consumer fails (the next read
   * starts a new one), or StateRestoreError once `signal` aborts.
   */
  async read(ranges: ReadonlyMap<number, PartitionRange>, onRecord: Target['onRecord'], signal: AbortSignal): Promise<void> {
    if (ranges.size === 0) return;
    const aborted = (): StateRestoreError => new StateRestoreError(`reading ${this.#topic} given up`, { details: { topic: this.#topic, reason: 'aborted' } });
    if (signal.aborted) throw aborted();
    const consumer = await this.#start();
    if (signal.aborted) throw aborted();
    const reads = [...ranges].map(([partition, range]) => new Promise<void>((resolve, reject) => {
      // A read still running for the partition (a restore given up) ends here.
      this.#targets.get(partition)?.done(aborted());
      this.#targets.set(partition, { ...range, onRecord, done: (error) => (error === undefined ? resolve() : reject(error)) });
      consumer.seek({ topic: this.#topic, partition, offset: String(range.start) });
    }));
    const onAbort = (): void => {
      for (const partition of ranges.keys()) this.#finish(partition, aborted());
    };
    signal.addEventListener('abort', onAbort, { once: true });
    consumer.resume([{ topic: this.#topic, partitions: [...ranges.keys()] }]);
    try {
      await Promise.all(reads);
    } finally {
      signal.removeEventListener('abort', onAbort);
      // Partitions of a read that failed part-way stay paused for the next one.
      for (const partition of ranges.keys()) this.#finish(partition, aborted());
    }
  }

  /** Joins the read group now (the broker's initial rebalance delay), so the first read does not wait for it. */
  warm(): void {
    this.#start().catch(() => undefined);
  }

  /** Leaves the read group; reads in progress reject. */
  async close(): Promise<void> {
    const consumer = this.#consumer;
    this.#consumer = undefined;
    this.#started = undefined;
    for (const partition of [...this.#targets.keys()]) this.#finish(partition, new StateRestoreError(`reading ${this.#topic} given up: the reader closed`, { details: { topic: this.#topic, reason: 'aborted' } }));
    await consumer?.disconnect().catch(() => undefined);
  }

  #start(): Promise<Consumer> {
    this.#started ??= this.#join().catch((err: unknown) => {
      this.#started = undefined;
      throw err instanceof TransportError ? err : toTransportError(err, `reading ${this.#topic} failed`);
    });
    return this.#started;
  }

  async #join(): Promise<Consumer> {
    const consumer = this.#kafka.consumer({
      groupId: `${this.#groupPrefix}.${randomUUID()}`,
      partitionAssigners: [assignAll],
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 100,
      retry: { restartOnFailure: () => Promise.resolve(false) },
    });
    let joined: (() => void) | undefined;
    const member = new Promise<void>((resolve) => { joined = resolve; });
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      // Only partitions being read are fetched; the rest wait paused (after a re-join too).
      const idle = (payload.memberAssignment[this.#topic] ?? []).filter((p) => !this.#targets.has(p));
      if (idle.length > 0) consumer.pause([{ topic: this.#topic, partitions: idle }]);
      joined?.();
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (this.#consumer !== consumer) return;
      const error = toTransportError(payload.error, `reading ${this.#topic} failed`);
      this.#consumer = undefined;
      this.#started = undefined;
      for (const partition of [...this.#targets.keys()]) this.#finish(partition, error);
      void consumer.disconnect().catch(() => undefined);
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [this.#topic], fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatch: (payload) => { this.#batch(consumer, payload); return Promise.resolve(); } });
    await member;
    this.#consumer = consumer;
    return consumer;
  }

  #batch(consumer: Consumer, { batch }: EachBatchPayload): void {
    const { partition } = batch;
    const target = this.#targets.get(partition);
    if (target === undefined) {
      consumer.pause([{ topic: this.#topic, partitions: [partition] }]);
      return;
    }
    for (const m of batch.messages) {
      const offset = Number(m.offset);
      if (offset < target.start) continue;
      if (offset >= target.end) break;
      target.onRecord(partition, m.key ?? null, m.value ?? null);
    }
    if (Number(batch.lastOffset()) + 1 >= target.end) this.#finish(partition);
  }

  /** Ends a partition's read (resolved, or with `error`) and pauses it. */
  #finish(partition: number, error?: VerdictError): void {
    const target = this.#targets.get(partition);
    if (target === undefined) return;
    this.#targets.delete(partition);
    this.#consumer?.pause([{ topic: this.#topic, partitions: [partition] }]);
    target.done(error);
  }
}
