/**
 * How a block crosses to a block worker and back. Structured clone copies a typed array's whole backing
 * ArrayBuffer, and Kafka and the embedded log hand out record values as views into shared 8 KiB pools or
 * fetch buffers: cloned one by one, every record would drag a pool along. So a block's keys and values are
 * copied once into one ArrayBuffer that is transferred, not cloned, and the worker's outputs carry only
 * exact-size copies.
 */
import type { Delivery } from '../streams/outcome.js';
import type { Headers, InboundRecord, OutboundRecord } from '../streams/types.js';

interface WireMeta {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly headers: Headers;
  /** Byte ranges in `bytes`: start and length, length -1 for a null key or value. */
  readonly keyAt: number;
  readonly keyLength: number;
  readonly valueAt: number;
  readonly valueLength: number;
}

export interface WireBlock {
  readonly records: readonly WireMeta[];
  readonly bytes: ArrayBuffer;
}

export function toWire(records: readonly InboundRecord[]): { block: WireBlock; transfer: ArrayBuffer[] } {
  let size = 0;
  for (const r of records) size += (r.key?.length ?? 0) + (r.value?.length ?? 0);
  const bytes = new Uint8Array(size);
  let at = 0;
  const meta = records.map((r): WireMeta => {
    const keyAt = at;
    if (r.key !== null) { bytes.set(r.key, at); at += r.key.length; }
    const valueAt = at;
    if (r.value !== null) { bytes.set(r.value, at); at += r.value.length; }
    return {
      topic: r.topic, partition: r.partition, offset: r.offset, timestamp: r.timestamp, headers: r.headers,
      keyAt, keyLength: r.key?.length ?? -1, valueAt, valueLength: r.value?.length ?? -1,
    };
  });
  return { block: { records: meta, bytes: bytes.buffer }, transfer: [bytes.buffer] };
}

export function fromWire(block: WireBlock): InboundRecord[] {
  const view = (at: number, length: number): Buffer | null => (length < 0 ? null : Buffer.from(block.bytes, at, length));
  return block.records.map((m) => ({
    topic: m.topic, partition: m.partition, offset: m.offset, timestamp: m.timestamp, headers: m.headers,
    key: view(m.keyAt, m.keyLength), value: view(m.valueAt, m.valueLength),
  }));
}

/** Byte fields as exact-size copies, so cloning the reply copies only them. */
export function detachDelivery(d: Delivery): Delivery {
  const { output } = d;
  const copy = (b: Buffer | string | null): Buffer | string | null => (b === null || typeof b === 'string' ? b : Buffer.from(new Uint8Array(b).buffer));
  return { ...d, output: { ...output, key: copy(output.key), value: copy(output.value) ?? '' } };
}

/**
 * Structured clone turns Buffers into plain Uint8Arrays; the sink's client wants Buffers back. The reply
 * is freshly cloned and owned by the caller, so it is fixed in place rather than copied.
 */
export function reattachDelivery(d: Delivery): Delivery {
  const output = d.output as { -readonly [K in keyof OutboundRecord]: OutboundRecord[K] };
  if (output.key instanceof Uint8Array && !Buffer.isBuffer(output.key)) output.key = asBuffer(output.key);
  if (output.value instanceof Uint8Array && !Buffer.isBuffer(output.value)) output.value = asBuffer(output.value);
  return d;
}

const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
