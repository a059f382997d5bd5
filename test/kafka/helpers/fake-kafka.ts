/**
 * A fake Kafka client for KafkaSource unit tests on virtual time: consumers the test drives through their
 * handlers, an admin whose offsets the test sets, and a recorder of the source's events.
 */
import assert from 'node:assert/strict';
import type { TransportError } from '../../../core/errors.js';
import type {
  AdminLike, ConsumerHandlers, ConsumerLike, FetchedBatch, KafkaClientFactory, PartitionOffsets, ProducerLike,
} from '../../../streams/kafka/kafka-client.js';
import type { KafkaSource, KafkaSourceOptions } from '../../../streams/kafka/kafka-source.js';
import type { SourceEvent } from '../../../streams/types.js';
import type { InboundRecord, TopicPartition } from '../../../pipeline/record.js';

/** Records every event of a source. */
export function collect(source: KafkaSource) {
  const events: SourceEvent[] = [];
  let completed = false;
  const subscription = source.events$.subscribe({
    next: (event) => { events.push(event); },
    complete: () => { completed = true; },
  });
  const records = (): InboundRecord[] => events.flatMap((e) => (e.type === 'batch' ? [...e.batch.records] : []));
  const offsets = (partition: number): number[] => records().filter((r) => r.partition === partition).map((r) => r.offset);
  const kinds = (): string[] => events.filter((e) => e.type !== 'batch').map((e) => `${e.type}:${e.partitions.map((p) => p.partition).sort().join(',')}`);
  return { events, records, offsets, kinds, subscription, completed: () => completed };
}

export class FakeConsumer implements ConsumerLike {
  handlers: ConsumerHandlers | undefined;
  stopped = false;
  readonly paused: TopicPartition[][] = [];
  readonly resumed: TopicPartition[][] = [];
  readonly commits: Array<ReadonlyArray<TopicPartition & { offset: number }>> = [];
  constructor(private readonly startError?: TransportError) {}
  start(handlers: ConsumerHandlers): Promise<void> {
    this.handlers = handlers;
    return this.startError === undefined ? Promise.resolve() : Promise.reject(this.startError);
  }
  pause(partitions: readonly TopicPartition[]): void { this.paused.push([...partitions]); }
  resume(partitions: readonly TopicPartition[]): void { this.resumed.push([...partitions]); }
  commit(offsets: ReadonlyArray<TopicPartition & { offset: number }>): Promise<void> { this.commits.push(offsets); return Promise.resolve(); }
  stop(): Promise<void> { this.stopped = true; return Promise.resolve(); }
  get h(): ConsumerHandlers {
    assert.ok(this.handlers, 'consumer was started');
    return this.handlers;
  }
}

/** Offsets of topic `t` as the test sets them; `gate`, when set, holds every request until it settles. */
export class FakeAdmin implements AdminLike {
  /** High watermark per partition (the log starts at 0). */
  readonly ends = new Map<number, number>();
  readonly committed = new Map<number, number>();
  requests = 0;
  disconnects = 0;
  failure: Error | undefined;
  gate: Promise<void> | undefined;
  /** What `clusterId()` answers (a real cluster's id by default), or rejects with; and how often it was asked. */
  cluster: string | Error = 'MkU3OEVBNTcwNTJENDM2Qk';
  clusterIdRequests = 0;
  clusterId(): Promise<string> {
    this.clusterIdRequests++;
    return this.cluster instanceof Error ? Promise.reject(this.cluster) : Promise.resolve(this.cluster);
  }
  async topicOffsets(): Promise<PartitionOffsets[]> {
    await this.#request();
    return [...this.ends].map(([partition, high]) => ({ partition, low: 0, high }));
  }
  async committedOffsets(): Promise<Array<TopicPartition & { readonly offset: number }>> {
    await this.#request();
    return [...this.committed].map(([partition, offset]) => ({ topic: 't', partition, offset }));
  }
  partitionCount(): Promise<number | null> { return Promise.reject(new Error('not used')); }
  createTopic(): Promise<void> { return Promise.reject(new Error('not used')); }
  disconnect(): Promise<void> { this.disconnects++; return Promise.resolve(); }
  async #request(): Promise<void> {
    this.requests++;
    await this.gate;
    if (this.failure !== undefined) throw this.failure;
  }
}

export function fakeFactory(startErrors: Array<TransportError | undefined> = [], admin?: FakeAdmin) {
  const consumers: FakeConsumer[] = [];
  const factory: KafkaClientFactory = {
    consumer: () => {
      const consumer = new FakeConsumer(startErrors.shift());
      consumers.push(consumer);
      return consumer;
    },
    producer: (): ProducerLike => { throw new Error('not used'); },
    admin: (): AdminLike => {
      if (admin === undefined) throw new Error('not used');
      return admin;
    },
    partitionReader: () => { throw new Error('not used'); },
  };
  return { factory, consumers };
}

export const fakeOptions: KafkaSourceOptions = {
  brokers: ['unused:9092'], clientId: 'test', groupId: 'g', topics: ['t'], sessionTimeout: 6_000, heartbeatInterval: 500,
  rebalanceTimeout: 6_000, maxBytesPerPartition: 1 << 20, maxWaitTimeInMs: 100, restartBackoff: { initialDelayMs: 100, maxDelayMs: 1_000 },
};

export const tp = (partition: number): TopicPartition => ({ topic: 't', partition });
export const fetched = (partition: number, offsets: number[], highWatermark?: number): FetchedBatch => ({
  topic: 't', partition, records: offsets.map((offset) => ({ topic: 't', partition, offset, key: null, value: null, headers: [], timestamp: 0 })),
  ...(highWatermark === undefined ? {} : { highWatermark }),
});
/** Lets promise callbacks (a consumer's start, the wait for a retired consumer's stop) run. */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
