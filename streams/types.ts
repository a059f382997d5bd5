/**
 * The transport seam. The embedded log and Kafka both implement Source and Sink, so the core never knows
 * which one it runs on.
 */
import type { Observable } from 'rxjs';

export type Headers = Readonly<Record<string, string>>;

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

/** A record read from a partition. Offsets are numbers: Kafka's int64 offsets stay far below 2^53 in practice. */
export interface InboundRecord extends TopicPartition {
  readonly offset: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Headers;
  readonly timestamp: number;
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

export interface OutboundRecord {
  readonly topic: string;
  readonly key: Buffer | string | null;
  readonly value: Buffer | string;
  readonly headers: Headers;
  /** Set by the embedded log only when the producer wants a partition; Kafka partitions by key. */
  readonly partition?: number;
}

export interface Sink {
  /** Resolves once the transport has acknowledged every record (for Kafka: the broker's acks). */
  send(records: readonly OutboundRecord[]): Promise<void>;
  close(): Promise<void>;
}
