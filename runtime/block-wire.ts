/**
 * How a block crosses to a block worker and back. Structured clone copies a typed array's whole backing
 * ArrayBuffer, and Kafka and the embedded log hand out record values as views into shared 8 KiB pools or
 * fetch buffers: cloned one by one, every record would drag a pool along. So a block's keys and values are
 * copied once into one ArrayBuffer that is transferred, not cloned; the worker's encoded outcomes come back the
 * same way. Header values are bytes too (views into the same fetch buffers), so they travel in the buffer
 * as well; each header is its name and a byte range.
 */
import type { EncodedOutcome } from '../pipeline/outcome.js';
import type { ModelBindings } from '../pipeline/route/bindings.js';
import { asVerdictError, type SerializedError } from '../core/errors.js';
import { NO_HEADERS } from '../pipeline/headers.js';
import type { InboundRecord, OutboundHeader, RecordHeader } from '../pipeline/record.js';
import type { StateRead } from '../pipeline/state/types.js';

/**
 * A header in the buffer: its name, and its value's start and length (-1 for a null value); or, for a text
 * value (Verdict's own headers on the way back), the text itself, which clones cheaply and spares the main
 * thread a Buffer per header.
 */
type WireHeader = readonly [key: string, at: number, length: number] | readonly [key: string, text: string];

interface WireMeta {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly headers: readonly WireHeader[];
  /** As data: an error instance does not survive the structured clone with its code. */
  readonly invalid?: SerializedError;
  /** Byte ranges in `bytes`: start and length, length -1 for a null key or value. */
  readonly keyAt: number;
  readonly keyLength: number;
  readonly valueAt: number;
  readonly valueLength: number;
}

/**
 * A block's model bindings on the wire: the generation and, per step, the refs (`name@version`) of each
 * role. Small: the worker maps refs back to the versions it knows (block-worker.ts).
 */
export interface WireBindings {
  readonly generation: number;
  readonly steps: readonly {
    readonly primary: string;
    readonly canary: { readonly ref: string; readonly percent: number } | null;
    readonly shadow: string | null;
  }[];
}

export interface WireBlock {
  readonly records: readonly WireMeta[];
  readonly bytes: ArrayBuffer;
  /** The versions the block runs; absent: the worker's compiled ones. */
  readonly bindings?: WireBindings;
  /**
   * One StateRead per record (pipeline/state/types.ts), as plain data: structured clone keeps their values
   * (numbers, strings, booleans, null) exactly. Absent for a pipeline without state.
   */
  readonly states?: readonly (StateRead | undefined)[];
}

/** Bindings as refs, for a block on its way to a worker. */
export function bindingsToWire(bindings: ModelBindings): WireBindings {
  return {
    generation: bindings.generation,
    steps: bindings.steps.map((s) => ({
      primary: s.primary.ref,
      canary: s.canary === null ? null : { ref: s.canary.model.ref, percent: s.canary.percent },
      shadow: s.shadow?.ref ?? null,
    })),
  };
}

const byteLength = (b: Buffer | string | null): number => (b === null ? 0 : typeof b === 'string' ? Buffer.byteLength(b) : b.length);

/** Bytes the headers take in the buffer: text values travel as text. */
function headersLength(headers: readonly OutboundHeader[]): number {
  let size = 0;
  for (const h of headers) if (typeof h.value !== 'string') size += byteLength(h.value);
  return size;
}

/** Writes bytes, text (as UTF-8) or nothing (null) at a moving position of one buffer. */
class Packer {
  at = 0;
  constructor(readonly bytes: Buffer) {}
  /** The length written, -1 for null. */
  put(b: Buffer | string | null): number {
    if (b === null) return -1;
    const n = typeof b === 'string' ? this.bytes.write(b, this.at) : (this.bytes.set(b, this.at), b.length);
    this.at += n;
    return n;
  }
  headers(headers: readonly OutboundHeader[]): WireHeader[] {
    return headers.map((h): WireHeader => {
      if (typeof h.value === 'string') return [h.key, h.value];
      const at = this.at;
      return [h.key, at, this.put(h.value)];
    });
  }
}

function unpackHeader(bytes: ArrayBuffer, header: WireHeader): OutboundHeader {
  if (header.length === 2) return { key: header[0], value: header[1] };
  const [key, at, length] = header;
  return { key, value: length < 0 ? null : Buffer.from(bytes, at, length) };
}

/** A record's headers: always bytes, since records only ever carry bytes (toWire packs them all). */
function unpackHeaders(bytes: ArrayBuffer, headers: readonly WireHeader[]): readonly RecordHeader[] {
  if (headers.length === 0) return NO_HEADERS;
  return headers.map((h) => unpackHeader(bytes, h) as RecordHeader);
}

export function toWire(records: readonly InboundRecord[], bindings?: WireBindings, states?: readonly (StateRead | undefined)[]): { block: WireBlock; transfer: ArrayBuffer[] } {
  let size = 0;
  for (const r of records) size += (r.key?.length ?? 0) + (r.value?.length ?? 0) + headersLength(r.headers);
  const packer = new Packer(Buffer.from(new ArrayBuffer(size)));
  const meta = records.map((r): WireMeta => {
    const keyAt = packer.at;
    const keyLength = packer.put(r.key);
    const valueAt = packer.at;
    const valueLength = packer.put(r.value);
    return {
      topic: r.topic, partition: r.partition, offset: r.offset, timestamp: r.timestamp,
      headers: r.headers.length === 0 ? [] : packer.headers(r.headers),
      ...(r.invalid === undefined ? {} : { invalid: r.invalid.toJSON() }),
      keyAt, keyLength, valueAt, valueLength,
    };
  });
  const buffer = packer.bytes.buffer as ArrayBuffer;
  const block: WireBlock = { records: meta, bytes: buffer, ...(bindings === undefined ? {} : { bindings }), ...(states === undefined ? {} : { states }) };
  return { block, transfer: [buffer] };
}

export function fromWire(block: WireBlock): InboundRecord[] {
  const view = (at: number, length: number): Buffer | null => (length < 0 ? null : Buffer.from(block.bytes, at, length));
  return block.records.map((m) => ({
    topic: m.topic, partition: m.partition, offset: m.offset, timestamp: m.timestamp,
    headers: unpackHeaders(block.bytes, m.headers),
    ...(m.invalid === undefined ? {} : { invalid: asVerdictError(m.invalid) }),
    key: view(m.keyAt, m.keyLength), value: view(m.valueAt, m.valueLength),
  }));
}

/** An encoded outcome on the way back: its key and value are byte ranges of the reply's one buffer. */
interface WireOutcome {
  readonly kind: EncodedOutcome['kind'];
  readonly label: string;
  readonly eventId?: string;
  readonly topic: string;
  readonly partition?: number;
  readonly headers: readonly WireHeader[];
  readonly keyAt: number;
  readonly keyLength: number;
  readonly valueAt: number;
  readonly valueLength: number;
}

export interface WireReply {
  readonly encoded: readonly WireOutcome[];
  readonly bytes: ArrayBuffer;
}

/**
 * A block's encoded outcomes packed like its records: every key and value copied once into one buffer that is
 * transferred back, so the reply's clone copies only the small fields, and the main thread makes no
 * per-record copies or string encodings (its outputs are views into the buffer).
 */
export function outcomesToWire(encoded: readonly EncodedOutcome[]): { reply: WireReply; transfer: ArrayBuffer[] } {
  let size = 0;
  for (const d of encoded) size += byteLength(d.output.key) + byteLength(d.output.value) + headersLength(d.output.headers);
  const packer = new Packer(Buffer.from(new ArrayBuffer(size)));
  const wire = encoded.map((d): WireOutcome => {
    const { output } = d;
    const keyAt = packer.at;
    const keyLength = packer.put(output.key);
    const valueAt = packer.at;
    const valueLength = packer.put(output.value);
    return {
      kind: d.kind, label: d.label, ...(d.eventId === undefined ? {} : { eventId: d.eventId }),
      topic: output.topic, ...(output.partition === undefined ? {} : { partition: output.partition }),
      headers: packer.headers(output.headers),
      keyAt, keyLength, valueAt, valueLength,
    };
  });
  const buffer = packer.bytes.buffer as ArrayBuffer;
  return { reply: { encoded: wire, bytes: buffer }, transfer: [buffer] };
}

export function outcomesFromWire(reply: WireReply): EncodedOutcome[] {
  const { bytes } = reply;
  const view = (at: number, length: number): Buffer | null => (length < 0 ? null : Buffer.from(bytes, at, length));
  return reply.encoded.map((w): EncodedOutcome => ({
    kind: w.kind, label: w.label, ...(w.eventId === undefined ? {} : { eventId: w.eventId }),
    output: {
      topic: w.topic, ...(w.partition === undefined ? {} : { partition: w.partition }),
      headers: w.headers.map((h) => unpackHeader(bytes, h)),
      key: view(w.keyAt, w.keyLength),
      value: view(w.valueAt, w.valueLength),
    },
  }));
}
