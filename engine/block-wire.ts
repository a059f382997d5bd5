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
  /** Byte ranges in `bytes`; length -1 for a null key or value. */
  readonly key: readonly [number, number];
  readonly value: readonly [number, number];
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
  const place = (b: Buffer | null): [number, number] => {
    if (b === null) return [0, -1];
    bytes.set(b, at);
    at += b.length;
    return [at - b.length, b.length];
  };
  const meta = records.map((r): WireMeta => ({
    topic: r.topic, partition: r.partition, offset: r.offset, timestamp: r.timestamp, headers: r.headers,
    key: place(r.key), value: place(r.value),
  }));
  return { block: { records: meta, bytes: bytes.buffer }, transfer: [bytes.buffer] };
}

export function fromWire(block: WireBlock): InboundRecord[] {
  const view = (range: readonly [number, number]): Buffer | null =>
    range[1] < 0 ? null : Buffer.from(block.bytes, range[0], range[1]);
  return block.records.map((m) => ({
    topic: m.topic, partition: m.partition, offset: m.offset, timestamp: m.timestamp, headers: m.headers,
    key: view(m.key), value: view(m.value),
  }));
}

/** Byte fields as exact-size copies, so cloning the reply copies only them. */
export function detachDelivery(d: Delivery): Delivery {
  const { output } = d;
  const copy = (b: Buffer | string | null): Buffer | string | null => (b === null || typeof b === 'string' ? b : Buffer.from(new Uint8Array(b).buffer));
  return { ...d, output: { ...output, key: copy(output.key), value: copy(output.value) ?? '' } };
}

/** Structured clone turns Buffers into plain Uint8Arrays; the sink's client wants Buffers back. */
export function reattachDelivery(d: Delivery): Delivery {
  const { output } = d;
  const buffer = <T>(b: T): T | Buffer => (b instanceof Uint8Array && !Buffer.isBuffer(b) ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : b);
  const fixed: OutboundRecord = { ...output, key: buffer(output.key), value: buffer(output.value) };
  return { ...d, output: fixed };
}
