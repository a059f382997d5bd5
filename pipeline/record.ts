/**
 * The record model: what flows from a source through the per-event core to a sink, byte for byte. Keys
 * and values are bytes or null; headers are an ordered list of (name, bytes or null), as Kafka carries them.
 */
import type { VerdictError } from '../core/errors.js';

/**
 * One record header as Kafka carries it: a name (a UTF-8 string on the wire) and a value of bytes or null
 * (KIP-82). Null and empty are different values, and a name may repeat.
 */
export interface RecordHeader {
  /** The header's name. */
  readonly key: string;
  /** Its bytes; null is a null value (not an empty one). */
  readonly value: Buffer | null;
}

/** A record's headers in wire order, duplicates included: nothing is decoded, merged or dropped. */
export type Headers = readonly RecordHeader[];

/** A header to produce: a string value is written as its UTF-8 bytes, null as a null value. */
export interface OutboundHeader {
  /** The header's name. */
  readonly key: string;
  readonly value: Buffer | string | null;
}

/** One partition of one topic. */
export interface TopicPartition {
  readonly topic: string;
  /** Partition number, from 0. */
  readonly partition: number;
}

/**
 * A record read from a partition, byte for byte: key and value are bytes or null (a null value is a
 * tombstone), headers are in wire order. Offsets are numbers: Kafka's int64 offsets stay far below 2^53.
 */
export interface InboundRecord extends TopicPartition {
  /** Its position in the partition, from 0. */
  readonly offset: number;
  /** The key's bytes, or null for none. */
  readonly key: Buffer | null;
  /** The value's bytes (an encoded event, JSON or MessagePack), or null for a tombstone. */
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

/** A record to produce. A null value is a tombstone; an empty one is an empty value. */
export interface OutboundRecord {
  readonly topic: string;
  /** Bytes, a string (written as UTF-8), or null for none. */
  readonly key: Buffer | string | null;
  /** Bytes, a string (written as UTF-8), or null for a tombstone. */
  readonly value: Buffer | string | null;
  /** In the order to write them; names may repeat. */
  readonly headers: readonly OutboundHeader[];
  /** Set by the embedded log only when the producer wants a partition; Kafka partitions by key. */
  readonly partition?: number;
}
