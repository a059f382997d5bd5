/**
 * Will an overload's backlog fit in the broker? The mock broker (librdkafka 2.0.2's mock cluster) keeps a
 * fixed amount per partition and deletes the oldest record batches beyond it, read or not; a backlog that
 * outgrows it loses records before the system under test can read them, and the overload check then
 * measures the broker, not the system. This predicts the busiest partition's backlog at the end of the
 * load, in the broker's own unit (record-batch bytes), before the run.
 */
import { Partitioners, type PartitionMetadata } from 'kafkajs';
import type { BenchEvent } from './events.js';

/**
 * The mock's retention per partition. librdkafka's rd_kafka_mock_partition_init sets max_size = 5 MiB and
 * max_cnt = 100,000 message sets; after each append it drops the oldest sets while either is exceeded
 * (the new set included). Measured against 2.0.2 here: 520 batches of 10,071 bytes kept, the 521st append
 * dropped the first (520 × 10,071 ≤ 5 MiB < 521 × 10,071). The count limit cannot bind first: a v2 batch
 * has a 61-byte header, and 100,000 × 61 bytes is more than 5 MiB (100,050 one-record batches of 70 bytes
 * left 74,898).
 */
export const MOCK_RETENTION_BYTES_PER_PARTITION = 5 * 1024 * 1024;

/** The fixed part of a v2 record batch (base offset … record count), which the mock counts too. */
export const RECORD_BATCH_OVERHEAD_BYTES = 61;

/** The predicted busiest partition should fill at most this share of retention: see predictBacklog. */
export const RETENTION_MARGIN = 0.75;

/** Bytes of an unsigned varint, after zigzag for signed values as Kafka's record format uses. */
function varintBytes(n: number): number {
  let z = n >= 0 ? 2 * n : -2 * n - 1;
  let bytes = 1;
  while (z >= 128) {
    z = Math.floor(z / 128);
    bytes++;
  }
  return bytes;
}

const sizedBytes = (length: number): number => varintBytes(length) + length;

/**
 * One record as kafkajs writes it into a v2 batch (record/v0): length, attributes, timestamp delta,
 * offset delta, key, value, headers. Deltas are taken as one byte each (true for up to 63 records a batch
 * and timestamps within 63 ms of the batch's first, which is how the generator sends).
 */
export function recordBytes(e: Pick<BenchEvent, 'key' | 'value' | 'headers'>): number {
  let headers = varintBytes(Object.keys(e.headers).length);
  for (const [k, v] of Object.entries(e.headers)) headers += sizedBytes(Buffer.byteLength(k)) + sizedBytes(Buffer.byteLength(v));
  const body = 1 + 1 + 1 + sizedBytes(Buffer.byteLength(e.key)) + sizedBytes(e.value.length) + headers;
  return varintBytes(body) + body;
}

/**
 * The share of records the busiest partition gets, as a function of the partition count, for a sequence
 * of keys under kafkajs's default (murmur2) partitioner, which the harness's load producer uses. Keys are
 * not spread evenly: a few cards carry many transactions, so the busiest partition can get well over
 * 1/partitions.
 */
export function busiestPartitionShare(keys: readonly string[]): (partitions: number) => number {
  const perKey = new Map<string, number>();
  for (const k of keys) perKey.set(k, (perKey.get(k) ?? 0) + 1);
  const memo = new Map<number, number>();
  return (partitions) => {
    const known = memo.get(partitions);
    if (known !== undefined) return known;
    const partitionOf = kafkajsPartitioner(partitions);
    const counts = new Array<number>(partitions).fill(0);
    for (const [k, n] of perKey) {
      const p = partitionOf(k);
      counts[p] = (counts[p] ?? 0) + n;
    }
    const share = keys.length === 0 ? 1 / partitions : Math.max(...counts) / keys.length;
    memo.set(partitions, share);
    return share;
  };
}

/** kafkajs's default partitioner for a topic of `partitions` partitions, as a function of the key. */
export function kafkajsPartitioner(partitions: number): (key: string) => number {
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata: PartitionMetadata[] = Array.from({ length: partitions }, (_, i) => ({
    partitionErrorCode: 0, partitionId: i, leader: 1, replicas: [1], isr: [1],
  }));
  return (key) => partitioner({ topic: '', partitionMetadata, message: { key, value: null } });
}

export interface BacklogInputs {
  /** Offered rate during the overload, records/s. */
  readonly rate: number;
  /** How fast the system under test is expected to consume meanwhile, records/s. */
  readonly consumeRate: number;
  readonly durationS: number;
  /** The generator's send interval: one record batch per partition per tick. */
  readonly tickMs: number;
  readonly partitions: number;
  /** Mean bytes of one record inside a batch (recordBytes). */
  readonly recordBytes: number;
  readonly retentionBytesPerPartition: number;
  /** The busiest partition's share of records, for a partition count. */
  readonly shareFor: (partitions: number) => number;
}

export interface BacklogPrediction {
  readonly consumeRate: number;
  /** Unread records over all partitions when the load stops. */
  readonly backlogRecords: number;
  /** The busiest partition's unread records and their record-batch bytes then. */
  readonly busiestPartitionRecords: number;
  readonly busiestPartitionBytes: number;
  readonly retentionBytesPerPartition: number;
  /** busiestPartitionBytes / retention. */
  readonly fill: number;
  /** fill ≤ RETENTION_MARGIN. */
  readonly fits: boolean;
  /** The fewest partitions (up to 1024) at which it fits; null when none does. */
  readonly partitionsNeeded: number | null;
}

/**
 * The busiest partition's unread bytes when the load stops. The consumer reads in offset order, so the
 * unread records are the newest (rate − consumeRate) × duration, written during the last
 * (1 − consumeRate/rate) of the load; each tick wrote one batch header per partition that got records.
 *
 * RETENTION_MARGIN (75%) because the consumption rate is an estimate from the levels before the overload,
 * and under overload the load producer takes more of the shared cores, so the system under test may
 * consume slower than it did there: at 2× saturation, a quarter less consumption adds a quarter to the
 * backlog.
 */
export function predictBacklog(i: BacklogInputs): BacklogPrediction {
  const at = (partitions: number): { records: number; busiestRecords: number; busiestBytes: number } => {
    const records = Math.max(0, i.rate - i.consumeRate) * i.durationS;
    const share = i.shareFor(partitions);
    const busiestRecords = records * share;
    const unreadTicks = i.rate <= 0 ? 0 : (records / i.rate) * (1000 / i.tickMs);
    // A partition gets a batch in a tick only if the tick has a record for it.
    const batches = Math.min(unreadTicks, busiestRecords);
    return { records, busiestRecords, busiestBytes: busiestRecords * i.recordBytes + batches * RECORD_BATCH_OVERHEAD_BYTES };
  };
  const fits = (bytes: number): boolean => bytes <= RETENTION_MARGIN * i.retentionBytesPerPartition;
  const now = at(i.partitions);
  let needed: number | null = null;
  if (fits(now.busiestBytes)) needed = i.partitions;
  else {
    for (let p = i.partitions + 1; p <= 1024 && needed === null; p++) if (fits(at(p).busiestBytes)) needed = p;
  }
  return {
    consumeRate: i.consumeRate,
    backlogRecords: Math.round(now.records),
    busiestPartitionRecords: Math.round(now.busiestRecords),
    busiestPartitionBytes: Math.round(now.busiestBytes),
    retentionBytesPerPartition: i.retentionBytesPerPartition,
    fill: Math.round((now.busiestBytes / i.retentionBytesPerPartition) * 1000) / 1000,
    fits: fits(now.busiestBytes),
    partitionsNeeded: needed,
  };
}
