/**
 * The transport seam. The embedded log and Kafka both implement Source and Sink, so the core never knows
 * which one it runs on.
 */
import type { Observable } from 'rxjs';
import type { VerdictError } from '../core/errors.js';
import type { InboundRecord, OutboundRecord, TopicPartition } from '../pipeline/record.js';
import type { StateRead } from '../pipeline/state/types.js';

/** A contiguous run of records of one partition, as a fetch returns them. */
export interface RecordBatch extends TopicPartition {
  /** In offset order; offsets may have gaps (compaction, transaction markers). */
  readonly records: readonly InboundRecord[];
}

/**
 * What a source emits: a partition gained (`assigned`), lost (`revoked`: forget what is in flight for it, it
 * is read again from its committed offset), or a batch of its records.
 */
export type SourceEvent =
  | { readonly type: 'assigned'; readonly partitions: readonly TopicPartition[] }
  | { readonly type: 'revoked'; readonly partitions: readonly TopicPartition[] }
  | { readonly type: 'batch'; readonly batch: RecordBatch };

/** Where records come from: `KafkaSource`, or the embedded log's consumer (`EmbeddedLog.consumer`). */
export interface Source {
  /** Partition assignments and record batches, in the order the transport saw them. */
  readonly events$: Observable<SourceEvent>;
  /** Commits, per partition, the offset of the next record to read (Kafka's convention: last processed + 1). */
  commit(offsets: ReadonlyArray<TopicPartition & { readonly offset: number }>): Promise<void>;
  /** Stops fetching from these partitions until resumed: how backpressure reaches the transport. */
  pause(partitions: readonly TopicPartition[]): void;
  /** Fetches from these paused partitions again. */
  resume(partitions: readonly TopicPartition[]): void;
  /** Revokes every owned partition (so what is owed can still be committed), waits for commits, completes `events$`. */
  close(): Promise<void>;
  /** The consumer group it reads as: the default changelog topic's name derives from it. */
  readonly groupId?: string;
  /** Where per-key state keeps its changelog on this transport; absent when it keeps none. */
  readonly changelog?: ChangelogStore;
}


/** A record the transport refused for what it is (too large, invalid), where sending it again cannot help. */
export interface RejectedRecord {
  /** Its position in the records given to `send`. */
  readonly index: number;
  /** A `RecordRejectedError` naming the transport's reason (for Kafka: the error name, e.g. MESSAGE_TOO_LARGE). */
  readonly error: VerdictError;
}

/** Where outcomes go: `KafkaSink`, or the embedded log's producer (`EmbeddedLog.producer`). */
export interface SendOptions {
  /**
   * Each partition's records of this send land whole or not at all (Kafka appends one record batch
   * atomically; the embedded log appends a send at once). The state changelog's writes ask for it. Default false.
   */
  readonly whole?: boolean;
  /**
   * Written without native code (with the librdkafka producer: through its kafkajs companion), for the dead
   * letter of a record whose output crashed the native producer (runtime/crash-guard.ts). Default false.
   */
  readonly avoidNative?: boolean;
}

export interface Sink {
  /**
   * Resolves once the transport has acknowledged every record except those it refused for themselves, which
   * it lists (none, usually). Rejects with a TransportError when the send failed as a whole (a connection,
   * a leader, a timeout); its `retryable` says whether sending again can help.
   */
  send(records: readonly OutboundRecord[], options?: SendOptions): Promise<readonly RejectedRecord[]>;
  /** Refuses later sends (TRANSPORT_FAILED, not retryable); `KafkaSink` first waits for the sends in flight, then disconnects. */
  close(): Promise<void>;
}

/**
 * Per-key state kept beside a stream (runtime/keyed-state.ts): restored before a partition's records are
 * processed, applied to each block in offset order, and made durable by a changelog written in the stream's
 * produce flow (streams/runtime/changelog-writes.ts gives the order of writes and commits).
 */
export interface StreamState {
  /**
   * Restores the partitions' state. Resolves true once it is restored, false when the restore was given up
   * (the partitions were released, or the state closed); retries transport failures itself meanwhile.
   * Rejects when it can never succeed (ConfigError: a changelog topic that does not match the input), and
   * the stream then fails.
   */
  restore(partitions: readonly TopicPartition[]): Promise<boolean>;
  /** Forgets the partitions' state (revoked): their next owner restores it from the changelog. */
  release(partitions: readonly TopicPartition[]): void;
  /**
   * Applies a block (consecutive records of one partition, called in offset order once the partition is
   * restored): one StateRead per record for the core (undefined: a record the core fails itself), and the
   * changelog records that make the block's state durable (none when it changed nothing).
   */
  apply(records: readonly InboundRecord[]): { readonly states: readonly (StateRead | undefined)[]; readonly changelog: readonly OutboundRecord[] };
}

/**
 * A changelog topic as the state sees it (streams/kafka/kafka-changelog.ts, streams/embedded/embedded-changelog.ts):
 * created to match the input topic's partitions, and read back partition by partition on a restore. Its
 * records are written through the stream's own Sink.
 */
export interface ChangelogStore {
  /**
   * Makes sure `topic` exists with as many partitions as `inputTopic` (created compacted when absent).
   * Rejects with ConfigError when it exists with another partition count: partition p's state lives in
   * changelog partition p.
   */
  prepare(topic: string, inputTopic: string): Promise<void>;
  /**
   * Reads the partitions of `topic` from their start to their end as of the call, each in offset order
   * (`onRecord`); records appended meanwhile are not read. Rejects with a TransportError (retryable when
   * trying again can help), or a StateRestoreError once `signal` aborts.
   */
  read(topic: string, partitions: readonly number[], onRecord: (partition: number, key: Buffer | null, value: Buffer | null) => void, signal: AbortSignal): Promise<void>;
}
