/**
 * An in-process, Kafka-shaped broker: named topics with a fixed number of partitions, append-only
 * partitions with offsets, keyed partitioning identical to Kafka's, consumer groups that split partitions
 * and rebalance, and committed offsets per group. The daemon runs on it in the demo and the benchmark
 * exactly as it runs on Kafka, through the same `Source` and `Sink`.
 */
import { EmbeddedChangelog } from './embedded-changelog.js';
import { z } from 'zod';
import type { Clock } from '../../core/clock.js';
import { TransportError } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../core/log.js';
import { parseOptions } from '../../core/options.js';
import { partitionForKey } from '../partitioner.js';
import { NO_HEADERS, headerBytes } from '../../pipeline/headers.js';
import type { Headers, InboundRecord, OutboundHeader, OutboundRecord, TopicPartition } from '../../pipeline/record.js';
import { ASSIGNORS, type AssignorName } from './assignors.js';
import { ConsumerGroup } from './consumer-group.js';
import { EmbeddedSink } from './embedded-sink.js';
import { EmbeddedSource, type ConsumerHost, type EmbeddedConsumerOptions } from './embedded-source.js';
import { PartitionLog } from './partition-log.js';

/** An embedded log's tuning, as code passes it: the one place its defaults live (documented on `EmbeddedLogOptions`). */
export const embeddedLogSchema = z.object({
  defaultPartitions: z.number().int().positive().default(1),
  maxRecordsPerPartition: z.number().int().positive().default(1_000_000),
  assignor: z.enum(['range', 'round-robin']).default('range'),
});

/** `new EmbeddedLog(options)`; every field optional, defaults in `embeddedLogSchema`. */
export interface EmbeddedLogOptions {
  /** Partitions of a topic created on first use. Default 1, as Kafka's num.partitions. */
  readonly defaultPartitions?: number;
  /** Retention: records kept per partition before the oldest are dropped. Default 1,000,000. */
  readonly maxRecordsPerPartition?: number;
  /** How groups split partitions. Default 'range', Kafka's default assignor. */
  readonly assignor?: AssignorName;
  /** Stamps appended records; an RxJS scheduler (asyncScheduler, TestScheduler) fits. Default Date.now. */
  readonly clock?: Pick<Clock, 'now'>;
  /** Default: silent. */
  readonly logger?: Logger;
}

export interface PartitionLag {
  readonly partition: number;
  readonly committed: number | undefined;
  readonly highWatermark: number;
  /** Records a member of the group would still read: from the committed offset, or the log start. */
  readonly lag: number;
}

interface Topic {
  readonly name: string;
  readonly partitions: readonly PartitionLog[];
  /** Round-robin cursor for records without key or partition. */
  nextUnkeyed: number;
  /** Resolvers waiting for the topic to reach a record count (see `waitForRecords`). */
  readonly waiters: Set<() => void>;
}

// Kafka's legal topic names; also what keeps `topic:partition` map keys unambiguous.
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

const toBuffer = (data: Buffer | string | null): Buffer | null => (typeof data === 'string' ? Buffer.from(data, 'utf8') : data);

/** Stored as the bytes a Kafka broker would keep: strings as UTF-8, nulls as nulls, in order. */
function storedHeaders(headers: readonly OutboundHeader[]): Headers {
  return headers.length === 0 ? NO_HEADERS : headers.map(headerBytes);
}

/**
 * The in-process log (module comment). Topics are created on first use with `defaultPartitions`, or by
 * `createTopic`. Misuse throws `TransportError` (TRANSPORT_FAILED, not retryable): an illegal topic name, an
 * unknown topic where one must exist, a partition it does not have, a partition count that differs from an
 * existing topic's. Bad options throw `ConfigError` (CONFIG_INVALID).
 */
export class EmbeddedLog {
  private readonly topicsByName = new Map<string, Topic>();
  private readonly groups = new Map<string, ConsumerGroup>();
  /** group → `topic:partition` → the next offset to read. */
  private readonly offsets = new Map<string, Map<string, number>>();
  private readonly defaultPartitions: number;
  private readonly maxRecords: number;
  private readonly assignor: AssignorName;
  private readonly clock: Pick<Clock, 'now'>;
  private readonly logger: Logger;
  private readonly host: ConsumerHost;

  constructor(options: EmbeddedLogOptions = {}) {
    const tuning = parseOptions(embeddedLogSchema, options, 'embedded log options');
    this.defaultPartitions = tuning.defaultPartitions;
    this.maxRecords = tuning.maxRecordsPerPartition;
    this.assignor = tuning.assignor;
    this.clock = options.clock ?? Date;
    this.logger = options.logger ?? silentLogger;
    this.host = {
      logger: this.logger,
      partitionLog: (topic, partition) => this.partitionLog(topic, partition),
      group: (groupId) => this.group(groupId),
      committedOffset: (groupId, topic, partition) => this.offsets.get(groupId)?.get(`${topic}:${partition}`),
      commit: (groupId, offsets) => this.commit(groupId, offsets),
      changelog: new EmbeddedChangelog(this),
    };
  }

  /**
   * Creates a topic; idempotent when it exists with the same count, an error when the count differs.
   * `maxRecordsPerPartition` overrides the log's retention for this topic; `compacted` keeps each key's
   * latest record instead (no record bound), as a Kafka topic with `cleanup.policy=compact`.
   */
  createTopic(name: string, partitions: number, options: { maxRecordsPerPartition?: number; compacted?: boolean } = {}): void {
    this.topic(name, partitions, options.maxRecordsPerPartition, options.compacted === true);
  }

  /** The topics' names, in creation order. */
  topics(): string[] {
    return [...this.topicsByName.keys()];
  }

  /** The topic's partition count; undefined when it does not exist. */
  partitionCount(topic: string): number | undefined {
    return this.topicsByName.get(topic)?.partitions.length;
  }

  /** A new member of `groupId`, subscribed to `topics` (created on first use). */
  consumer(options: EmbeddedConsumerOptions): EmbeddedSource {
    for (const topic of options.topics) this.topic(topic);
    return new EmbeddedSource(this.host, options);
  }

  /** A `Sink` that appends to this log (as `append`): a send resolves once appended (no record refused alone), or rejects as `append` throws. */
  producer(): EmbeddedSink {
    return new EmbeddedSink((records) => {
      this.append(records);
    });
  }

  /**
   * Appends records (keyed partitioning unless `partition` is set, round-robin without a key) and returns
   * them with their offsets. Consumers are woken, never called: delivery always happens later.
   */
  append(records: readonly OutboundRecord[]): InboundRecord[] {
    // Route every record before appending any, so a bad partition rejects the whole send, not half of it.
    const targets = records.map((record) => {
      const topic = this.topic(record.topic);
      const log = topic.partitions[this.choosePartition(topic, record)];
      if (log === undefined) {
        throw new TransportError(`no partition ${record.partition} in ${topic.name}`, { retryable: false, details: { topic: topic.name } });
      }
      return { record, topic, log };
    });
    const appended: InboundRecord[] = [];
    const touched = new Set<PartitionLog>();
    const topics = new Set<Topic>();
    const timestamp = this.clock.now();
    for (const { record, topic, log } of targets) {
      appended.push(log.append(toBuffer(record.key), toBuffer(record.value), storedHeaders(record.headers), timestamp));
      touched.add(log);
      topics.add(topic);
    }
    for (const log of touched) log.notify();
    for (const topic of topics) for (const waiter of topic.waiters) waiter();
    return appended;
  }

  /** Up to `max` records of one partition from `fromOffset` (or from the log start, after retention). */
  read(topic: string, partition: number, fromOffset: number, max = Infinity): InboundRecord[] {
    return this.partitionLog(topic, partition).read(fromOffset, max);
  }

  /** High watermarks by partition: the offset the next record of each partition will get. */
  endOffsets(topic: string): number[] {
    return this.existing(topic).partitions.map((p) => p.highWatermark);
  }

  /** The oldest retained offset by partition. */
  startOffsets(topic: string): number[] {
    return this.existing(topic).partitions.map((p) => p.logStartOffset);
  }

  /** The group's committed offsets by partition (the next offset to read), undefined where none. */
  committed(groupId: string, topic: string): Array<number | undefined> {
    const committed = this.offsets.get(groupId);
    return this.existing(topic).partitions.map((p) => committed?.get(`${topic}:${p.partition}`));
  }

  /** Per partition of `topic`, in partition order: the group's committed offset, the log end, and the records still to read. */
  lag(groupId: string, topic: string): PartitionLag[] {
    const committed = this.committed(groupId, topic);
    return this.existing(topic).partitions.map((p) => {
      const offset = committed[p.partition];
      const from = offset === undefined ? p.logStartOffset : Math.max(offset, p.logStartOffset);
      return { partition: p.partition, committed: offset, highWatermark: p.highWatermark, lag: Math.max(0, p.highWatermark - from) };
    });
  }

  /** `lag` summed over the topic's partitions: records the group has still to read. */
  totalLag(groupId: string, topic: string): number {
    return this.lag(groupId, topic).reduce((sum, p) => sum + p.lag, 0);
  }

  /** Resolves once `topic` has received `count` records in all (retention does not lower the count). */
  waitForRecords(topic: string, count: number, signal?: AbortSignal): Promise<void> {
    const t = this.topic(topic);
    const reached = (): boolean => t.partitions.reduce((sum, p) => sum + p.highWatermark, 0) >= count;
    if (reached()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        t.waiters.delete(check);
        signal?.removeEventListener('abort', abort);
      };
      const check = (): void => {
        if (!reached()) return;
        done();
        resolve();
      };
      const abort = (): void => {
        done();
        reject(signal?.reason instanceof Error ? signal.reason : new TransportError(`gave up waiting for ${count} records in ${topic}`, { retryable: false }));
      };
      if (signal?.aborted === true) return abort();
      t.waiters.add(check);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }

  // ---- internals ---------------------------------------------------------------------------------------

  private topic(name: string, partitions?: number, retention?: number, compacted = false): Topic {
    const existing = this.topicsByName.get(name);
    if (existing !== undefined) {
      if (partitions !== undefined && partitions !== existing.partitions.length) {
        throw new TransportError(`topic ${name} exists with ${existing.partitions.length} partitions, not ${partitions}`, {
          retryable: false,
          details: { topic: name },
        });
      }
      return existing;
    }
    if (!TOPIC_NAME.test(name)) throw new TransportError(`illegal topic name ${JSON.stringify(name)}`, { retryable: false });
    const count = positiveInteger('partitions', partitions ?? this.defaultPartitions);
    if (retention !== undefined) positiveInteger('maxRecordsPerPartition', retention);
    const created: Topic = {
      name,
      partitions: Array.from({ length: count }, (_, p) => new PartitionLog(name, p, retention ?? this.maxRecords, compacted)),
      nextUnkeyed: 0,
      waiters: new Set(),
    };
    this.topicsByName.set(name, created);
    this.logger.debug({ topic: name, partitions: count }, 'topic created');
    return created;
  }

  private existing(name: string): Topic {
    const topic = this.topicsByName.get(name);
    if (topic === undefined) throw new TransportError(`unknown topic ${name}`, { retryable: false, details: { topic: name } });
    return topic;
  }

  private partitionLog(topic: string, partition: number): PartitionLog {
    const log = this.existing(topic).partitions[partition];
    if (log === undefined) throw new TransportError(`no partition ${partition} in ${topic}`, { retryable: false, details: { topic, partition } });
    return log;
  }

  private choosePartition(topic: Topic, record: OutboundRecord): number {
    const count = topic.partitions.length;
    if (record.partition !== undefined) return record.partition;
    if (record.key !== null) return partitionForKey(record.key, count);
    return topic.nextUnkeyed++ % count;
  }

  private group(groupId: string): ConsumerGroup {
    let group = this.groups.get(groupId);
    if (group === undefined) {
      group = new ConsumerGroup(groupId, ASSIGNORS[this.assignor], (topic) => this.existing(topic).partitions.length);
      this.groups.set(groupId, group);
    }
    return group;
  }

  private commit(groupId: string, offsets: ReadonlyArray<TopicPartition & { readonly offset: number }>): void {
    // Validate everything first, so a bad entry leaves the group's offsets untouched.
    for (const { topic, partition, offset } of offsets) {
      this.partitionLog(topic, partition);
      if (!Number.isSafeInteger(offset) || offset < 0) {
        throw new TransportError(`invalid offset ${offset} for ${topic}:${partition}`, { retryable: false, details: { topic, partition } });
      }
    }
    let committed = this.offsets.get(groupId);
    if (committed === undefined) {
      committed = new Map();
      this.offsets.set(groupId, committed);
    }
    for (const { topic, partition, offset } of offsets) committed.set(`${topic}:${partition}`, offset);
  }
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new TransportError(`${name} must be a positive integer, got ${value}`, { retryable: false });
  return value;
}
