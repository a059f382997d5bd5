/**
 * A fake Kafka client for KafkaSource unit tests on virtual time: consumers the test drives through their
 * handlers, and a recorder of the source's events.
 */
import assert from 'node:assert/strict';
import type { TransportError } from '../../../core/errors.js';
import type {
  AdminLike, ConsumerHandlers, ConsumerLike, FetchedBatch, KafkaClientFactory, ProducerLike,
} from '../../../streams/kafka/kafka-client.js';
import type { KafkaSource, KafkaSourceOptions } from '../../../streams/kafka/kafka-source.js';
import type { InboundRecord, SourceEvent, TopicPartition } from '../../../streams/types.js';

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

export function fakeFactory(startErrors: Array<TransportError | undefined> = []) {
  const consumers: FakeConsumer[] = [];
  const factory: KafkaClientFactory = {
    consumer: () => {
      const consumer = new FakeConsumer(startErrors.shift());
      consumers.push(consumer);
      return consumer;
    },
    producer: (): ProducerLike => { throw new Error('not used'); },
    admin: (): AdminLike => { throw new Error('not used'); },
  };
  return { factory, consumers };
}

export const fakeOptions: KafkaSourceOptions = {
  brokers: ['unused:9092'], clientId: 'test', groupId: 'g', topics: ['t'], sessionTimeout: 6_000, heartbeatInterval: 500,
  rebalanceTimeout: 6_000, maxBytesPerPartition: 1 << 20, maxWaitTimeInMs: 100, restartBackoff: { initialDelayMs: 100, maxDelayMs: 1_000 },
};

export const tp = (partition: number): TopicPartition => ({ topic: 't', partition });
export const fetched = (partition: number, offsets: number[]): FetchedBatch => ({
  topic: 't', partition, records: offsets.map((offset) => ({ topic: 't', partition, offset, key: null, value: null, headers: {}, timestamp: 0 })),
});
/** Lets promise callbacks (a consumer's start, the wait for a retired consumer's stop) run. */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
