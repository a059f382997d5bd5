/**
 * The transport seam. The embedded log and Kafka both implement Source and Sink, so the core never knows
 * which one it runs on.
 */
import type { Observable } from 'rxjs';
import type { VerdictError } from '../core/errors.js';

/**
 * One record header as Kafka carries it: a name (a UTF-8 string on the wire) and a value of bytes or null
 * (KIP-82). Null and empty are different values, and a name may repeat.
 */
export interface RecordHeader {
  readonly key: string;
  readonly value: Buffer | null;
}

/** A record's headers in wire order, duplicates included: nothing is decoded, merged or dropped. */
export type Headers = readonly RecordHeader[];

/** A header to produce: a string value is written as its UTF-8 bytes, null as a null value. */
export interface OutboundHeader {
  readonly key: string;
  readonly value: Buffer | string | null;
}

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

/**
 * A record read from a partition, byte for byte: key and value are bytes or null (a null value is a
 * tombstone), headers are in wire order. Offsets are numbers: Kafka's int64 offsets stay far below 2^53.
 */
export interface InboundRecord extends TopicPartition {
  readonly offset: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Headers;
  /** Milliseconds since the epoch, as the record carries it (NaN when the transport could not read one). */
  readonly timestamp: number;
  /**
   * Set when the transport could not convert the record into this shape (its key, value and headers are
   * then whatever could be read, bytes as they came). The pipeline dead-letters such a record with this
   * error instead of processing it, so one bad record never stops its batch.
   */
  readonly invalid?: VerdictError;
}

/** A contiguous run of records of one partition, as a fetch returns them. */
export interface RecordBatch extends TopicPartition {
  readonly records: readonly InboundRecord[];
}

export type SourceEvent =
  | { readonly type: 'assigned'; readonly partitions: readonly TopicPartition[] }
  | { readonly type: 'revoked'; readonly partitions: readonly TopicPartition[] }
  | { readonly type: 'batch'; readonly batch: RecordBatch };

export interface Source {
  /** Partition assignments and record batches, in the order the transport saw them. */
  readonly events$: Observable<SourceEvent>;
  /** Commits, per partition, the offset of the next record to read (Kafka's convention: last processed + 1). */
  commit(offsets: ReadonlyArray<TopicPartition & { readonly offset: number }>): Promise<void>;
  /** Stops fetching from these partitions until resumed: how backpressure reaches the transport. */
  pause(partitions: readonly TopicPartition[]): void;
  resume(partitions: readonly TopicPartition[]): void;
  close(): Promise<void>;
}

/** A record to produce. A null value is a tombstone; an empty one is an empty value. */
export interface OutboundRecord {
  readonly topic: string;
  readonly key: Buffer | string | null;
  readonly value: Buffer | string | null;
  readonly headers: readonly OutboundHeader[];
  /** Set by the embedded log only when the producer wants a partition; Kafka partitions by key. */
  readonly partition?: number;
}

/** A record the transport refused for what it is (too large, invalid), where sending it again cannot help. */
export interface RejectedRecord {
  /** Its position in the records given to `send`. */
  readonly index: number;
  /** A `RecordRejectedError` naming the transport's reason (for Kafka: the error name, e.g. MESSAGE_TOO_LARGE). */
  readonly error: VerdictError;
}

export interface Sink {
  /**
   * Resolves once the transport has acknowledged every record except those it refused for themselves, which
   * it lists (none, usually). Rejects with a TransportError when the send failed as a whole (a connection,
   * a leader, a timeout); its `retryable` says whether sending again can help.
   */
  send(records: readonly OutboundRecord[]): Promise<readonly RejectedRecord[]>;
  close(): Promise<void>;
}
