/**
 * How a block crosses to a block worker and back. Structured clone copies a typed array's whole backing
 * ArrayBuffer, and Kafka and the embedded log hand out record values as views into shared 8 KiB pools or
 * fetch buffers: cloned one by one, every record would drag a pool along. So a block's keys and values are
 * copied once into one ArrayBuffer that is transferred, not cloned; the worker's deliveries come back the
 * same way.
 */
import type { Delivery } from '../streams/outcome.js';
import type { Headers, InboundRecord } from '../streams/types.js';

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

/** A delivery on the way back: its key and value are byte ranges of the reply's one buffer. */
interface WireDelivery {
  readonly kind: Delivery['kind'];
  readonly label: string;
  readonly eventId?: string;
  readonly topic: string;
  readonly partition?: number;
  readonly headers: Headers;
  readonly keyAt: number;
  readonly keyLength: number;
  readonly valueAt: number;
  readonly valueLength: number;
}

export interface WireReply {
  readonly deliveries: readonly WireDelivery[];
  readonly bytes: ArrayBuffer;
}

const byteLength = (b: Buffer | string | null): number => (b === null ? 0 : typeof b === 'string' ? Buffer.byteLength(b) : b.length);

/**
 * A block's deliveries packed like its records: every key and value copied once into one buffer that is
 * transferred back, so the reply's clone copies only the small fields, and the main thread makes no
 * per-record copies or string encodings (its outputs are views into the buffer).
 */
export function deliveriesToWire(deliveries: readonly Delivery[]): { reply: WireReply; transfer: ArrayBuffer[] } {
  let size = 0;
  for (const d of deliveries) size += byteLength(d.output.key) + byteLength(d.output.value);
  const bytes = Buffer.from(new ArrayBuffer(size));
  let at = 0;
  const put = (b: Buffer | string): number => {
    const n = typeof b === 'string' ? bytes.write(b, at) : (bytes.set(b, at), b.length);
    at += n;
    return n;
  };
  const wire = deliveries.map((d): WireDelivery => {
    const { output } = d;
    const keyAt = at;
    const keyLength = output.key === null ? -1 : put(output.key);
    const valueAt = at;
    const valueLength = put(output.value);
    return {
      kind: d.kind, label: d.label, ...(d.eventId === undefined ? {} : { eventId: d.eventId }),
      topic: output.topic, ...(output.partition === undefined ? {} : { partition: output.partition }), headers: output.headers,
      keyAt, keyLength, valueAt, valueLength,
    };
  });
  const buffer = bytes.buffer;
  return { reply: { deliveries: wire, bytes: buffer }, transfer: [buffer] };
}

export function deliveriesFromWire(reply: WireReply): Delivery[] {
  const { bytes } = reply;
  return reply.deliveries.map((w): Delivery => ({
    kind: w.kind, label: w.label, ...(w.eventId === undefined ? {} : { eventId: w.eventId }),
    output: {
      topic: w.topic, ...(w.partition === undefined ? {} : { partition: w.partition }), headers: w.headers,
      key: w.keyLength < 0 ? null : Buffer.from(bytes, w.keyAt, w.keyLength),
      value: Buffer.from(bytes, w.valueAt, w.valueLength),
    },
  }));
}
