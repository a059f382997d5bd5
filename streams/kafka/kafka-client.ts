/**
 * The narrow seam between Verdict's Kafka transport and a Kafka client library. `KafkaSource` and
 * `KafkaSink` only see these interfaces, in Verdict's own types, so a different client (a librdkafka
 * binding, platformatic/kafka) can be plugged in by writing one factory. kafkajs is the default
 * (kafkajs-client.ts); librdkafka can produce instead (librdkafka-producer.ts, chosen in client-factory.ts);
 * no client library's type crosses this file.
 */
import type { RecordRejectedError, TransportError } from '../../core/errors.js';
import type { InboundRecord, OutboundRecord, TopicPartition } from '../../pipeline/record.js';
import type { KafkaLogLevel, KafkaProducerOptions, KafkaSasl, KafkaTls } from '../../config/kafka-options.js';

/**
 * Where and how to connect; shared by every client a factory makes. Loose: a parsed daemon `kafka` block
 * (config/kafka-options.ts) fits as is. Absent timeouts and TLS are left to the client library's own
 * defaults; an absent `logLevel` is `kafkaLogLevelSchema`'s default (warn).
 */
export interface KafkaConnection {
  /** Bootstrap brokers, each `host:port`. */
  readonly brokers: readonly string[];
  /** Kafka's client id (broker logs, quotas); the daemon's default is `verdict` (config/kafka-options.ts). */
  readonly clientId: string;
  /** TLS: true for the system CAs, PEM material (`KafkaTls`), or false/absent for plaintext. */
  readonly ssl?: boolean | KafkaTls;
  /** null or absent: no SASL. */
  readonly sasl?: KafkaSasl | null;
  /** ms. */
  readonly connectionTimeout?: number;
  /** ms. */
  readonly requestTimeout?: number;
  /** The client library's own log level, forwarded to the pino logger: nothing, error, warn (default), info, debug. */
  readonly logLevel?: KafkaLogLevel;
}

export interface ConsumerSettings {
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly fromBeginning: boolean;
  readonly sessionTimeout: number;
  readonly heartbeatInterval: number;
  readonly rebalanceTimeout: number;
  readonly maxBytesPerPartition: number;
  readonly maxWaitTimeInMs: number;
  readonly partitionsConsumedConcurrently: number;
}

/** A fetched run of records of one partition, already in Verdict's record type. */
export interface FetchedBatch extends TopicPartition {
  readonly records: readonly InboundRecord[];
  /** The partition's high watermark in the fetch response, if the client reports it. */
  readonly highWatermark?: number;
}

/** What a consumer reports to its owner. Called on the client's own schedule; handlers must not block. */
export interface ConsumerHandlers {
  /**
   * A fetched batch. Returning false refuses it: the client must not advance past it, so the same
   * records are fetched again (once the partition is resumed, or by the partition's next owner).
   */
  batch(batch: FetchedBatch): boolean;
  /**
   * This member joined the group with this whole assignment. Every partition's position restarts at its
   * committed offset (or the reset policy), the ones it kept included.
   */
  joined(assignment: readonly TopicPartition[]): void;
  /** The group is rebalancing: the current assignment is void until the next `joined`. */
  rebalancing(): void;
  /** The consumer died and will not restart itself; its owner decides whether to make a new one. */
  crashed(error: TransportError): void;
}

export interface ConsumerLike {
  /** Connects, subscribes and starts fetching; resolves once fetching has been started, not joined. */
  start(handlers: ConsumerHandlers): Promise<void>;
  /** Stops fetching these partitions (a no-op while the consumer is not running). */
  pause(partitions: readonly TopicPartition[]): void;
  resume(partitions: readonly TopicPartition[]): void;
  /** Commits, per partition, the next offset to read. Rejects with a TransportError. */
  commit(offsets: ReadonlyArray<TopicPartition & { readonly offset: number }>): Promise<void>;
  /** Leaves the group and disconnects. Safe to call after a crash and twice. */
  stop(): Promise<void>;
}

/** Records for one topic, in send order. */
export interface TopicRecords {
  readonly topic: string;
  readonly records: readonly OutboundRecord[];
}

export type ProducerSettings = KafkaProducerOptions;

export interface SendBatchOptions {
  /**
   * Each partition's records of the round must land whole or not at all: one record batch a partition,
   * which Kafka appends atomically (the state changelog's writes rely on it: pipeline/state/partition-state.ts).
   * kafkajs always sends that way; librdkafka may split a partition's records over requests, so its
   * producer sends such a round through kafkajs (streams/kafka/librdkafka-producer.ts).
   */
  readonly whole?: boolean;
  /**
   * Written without native code: a producer on a native client sends the round through a JS one (the
   * librdkafka producer's kafkajs companion), in order with its other rounds. The crash guard asks it for the
   * dead letter of a record whose output crashed the native producer (runtime/crash-guard.ts). Default false.
   */
  readonly avoidNative?: boolean;
}

/** A record the brokers refused for itself, by its place in the round: `batch[topicIndex].records[recordIndex]`. */
export interface RefusedRecord {
  readonly topicIndex: number;
  readonly recordIndex: number;
  readonly error: RecordRejectedError;
}

export interface ProducerLike {
  connect(): Promise<void>;
  /**
   * One produce round for all topics; resolves when the brokers acknowledged every record but the ones
   * listed as refused for themselves (too large, invalid: see `RECORD_ERRORS`), when the client can tell
   * which (librdkafka's delivery reports can). A client that cannot tell (kafkajs) rejects with a
   * `RecordRejectedError` instead, and the caller isolates the records by halves. Any other failure rejects
   * with a TransportError. Either way some records of the round may have been written.
   */
  sendBatch(batch: readonly TopicRecords[], options?: SendBatchOptions): Promise<readonly RefusedRecord[]>;
  disconnect(): Promise<void>;
}

export interface PartitionOffsets {
  readonly partition: number;
  /** The log start offset. */
  readonly low: number;
  /** The high watermark. */
  readonly high: number;
}

export interface AdminLike {
  topicOffsets(topic: string): Promise<PartitionOffsets[]>;
  /** The group's committed offsets; partitions without a commit are absent. */
  committedOffsets(groupId: string, topics: readonly string[]): Promise<Array<TopicPartition & { readonly offset: number }>>;
  /** The topic's partition count, or null when it does not exist. */
  partitionCount(topic: string): Promise<number | null>;
  /** Creates a topic with these topic configs (`cleanup.policy`: …); resolves also when it exists already. */
  createTopic(topic: string, partitions: number, configs: Readonly<Record<string, string>>): Promise<void>;
  disconnect(): Promise<void>;
}

export interface KafkaClientFactory {
  consumer(settings: ConsumerSettings): ConsumerLike;
  producer(settings: ProducerSettings): ProducerLike;
  admin(): AdminLike;
  /** A reader of `topic`'s partitions outside any group's commits (a changelog restore); the caller closes it. */
  partitionReader(topic: string): PartitionReaderLike;
}

export interface PartitionReaderLike {
  /**
   * Reads each partition in `ranges` from `start` to `end` (exclusive), in offset order. Rejects with a
   * TransportError, or a StateRestoreError once `signal` aborts.
   */
  read(ranges: ReadonlyMap<number, { readonly start: number; readonly end: number }>, onRecord: (partition: number, key: Buffer | null, value: Buffer | null) => void, signal: AbortSignal): Promise<void>;
  /** Joins the reader's group now, so the first read does not wait for it; failures are left to `read`. */
  warm(): void;
  close(): Promise<void>;
}
