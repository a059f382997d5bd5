/**
 * Record headers byte for byte through kafkajs.
 *
 * kafkajs (2.2.4) folds a fetched record's headers into an object (`src/protocol/recordBatch/record/v0/
 * decoder.js`): the order across names is lost, and integer-like names are reordered by JavaScript. When it
 * produces, it builds the headers from an object again, so interleaved duplicates (a, b, a) cannot be
 * written in order, and a null header value throws (`Buffer.byteLength(null)` in `record/v0/index.js`).
 * Kafka allows all three (KIP-82), and a dead letter must carry the input's headers exactly.
 *
 * So this module wraps two of kafkajs's internal modules in Node's require cache before kafkajs loads them:
 * - the header decoder, so each record's headers are also collected as an ordered list, which the record
 *   decoder attaches to the record under `WIRE_HEADERS`;
 * - the record encoder, which writes the list under `WIRE_HEADERS` on a message's headers object, in order,
 *   with null values, and otherwise behaves exactly as kafkajs's.
 * kafkajs requires its fetch and produce modules lazily, at the first fetch and produce, so installing this
 * when `kafkajs-client.ts` is imported is early enough; `install` refuses if they are loaded already.
 */
import { createRequire } from 'node:module';
import type { RecordHeader } from '../../pipeline/record.js';

const require = createRequire(import.meta.url);

/** Where the ordered headers travel: on a fetched message, and on a produced message's headers object. */
export const WIRE_HEADERS: unique symbol = Symbol.for('verdict.kafka.wireHeaders');

interface KafkajsEncoder {
  writeVarInt(value: number): KafkajsEncoder;
  writeInt8(value: number): KafkajsEncoder;
  writeVarLong(value: number): KafkajsEncoder;
  writeVarIntBytes(value: Buffer | string | null | undefined): KafkajsEncoder;
  writeVarIntString(value: string): KafkajsEncoder;
  writeVarIntArray(values: readonly KafkajsEncoder[]): KafkajsEncoder;
}
interface KafkajsEncoderClass {
  new (): KafkajsEncoder;
  sizeOfVarInt(value: number): number;
  sizeOfVarLong(value: number): number;
  sizeOfVarIntBytes(value: Buffer | string | null | undefined): number;
}
type HeaderDecoder = (decoder: unknown) => { key: string; value: Buffer | null };
type RecordDecoder = (decoder: unknown, context?: unknown) => Record<string | symbol, unknown>;
interface RecordFields {
  offsetDelta?: number;
  timestampDelta?: number;
  key?: Buffer | string | null;
  value?: Buffer | string | null;
  headers?: Record<string | symbol, unknown>;
}

const base = 'kafkajs/src/protocol';
const paths = {
  encoder: `${base}/encoder.js`,
  headerDecoder: `${base}/recordBatch/header/v0/decoder.js`,
  recordDecoder: `${base}/recordBatch/record/v0/decoder.js`,
  recordEncoder: `${base}/recordBatch/record/v0/index.js`,
  // The modules that capture the two above when they load: they must not be loaded yet.
  batchDecoder: `${base}/recordBatch/v0/decoder.js`,
  produceRequest: `${base}/requests/produce/v3/request.js`,
};

let installed = false;

/** Installs the wrappers once; throws if kafkajs has already loaded the modules that would bypass them. */
export function installRecordCodec(): void {
  if (installed) return;
  const resolved = Object.fromEntries(Object.entries(paths).map(([name, p]) => [name, require.resolve(p)])) as Record<keyof typeof paths, string>;
  for (const late of [resolved.batchDecoder, resolved.produceRequest]) {
    if (require.cache[late] !== undefined) throw new Error(`kafkajs loaded ${late} before Verdict's record codec was installed`);
  }
  // The one computed require here, and it takes only a name from the constant `paths` table above.
  // eslint-disable-next-line no-restricted-syntax -- the specifier is a kafkajs module from `paths`, never config or data
  const load = (name: keyof typeof paths): unknown => require(resolved[name]);
  // The header decoder first: the record decoder captures it when it loads.
  let collecting: RecordHeader[] | undefined;
  const decodeHeader = load('headerDecoder') as HeaderDecoder;
  replaceExports(resolved.headerDecoder, (decoder: unknown) => {
    const header = decodeHeader(decoder);
    collecting?.push({ key: header.key, value: header.value });
    return header;
  });
  const decodeRecord = load('recordDecoder') as RecordDecoder;
  replaceExports(resolved.recordDecoder, (decoder: unknown, context?: unknown) => {
    const headers: RecordHeader[] = [];
    collecting = headers;
    try {
      const record = decodeRecord(decoder, context);
      record[WIRE_HEADERS] = headers;
      return record;
    } finally {
      collecting = undefined;
    }
  });
  load('recordEncoder'); // loaded, so that its cache entry is the one replaced
  replaceExports(resolved.recordEncoder, encodeRecord(load('encoder') as KafkajsEncoderClass));
  installed = true;
}

function replaceExports(path: string, exports: unknown): void {
  const cached = require.cache[path];
  if (cached === undefined) throw new Error(`kafkajs module ${path} is not loaded`);
  cached.exports = exports;
}

/** kafkajs's record encoder (Kafka's Record v2: varint-framed fields), with headers from an ordered list. */
function encodeRecord(Encoder: KafkajsEncoderClass): (fields: RecordFields) => KafkajsEncoder {
  return ({ offsetDelta = 0, timestampDelta = 0, key, value, headers = {} }) => {
    const list = orderedHeaders(headers);
    let headersSize = Encoder.sizeOfVarInt(list.length);
    for (const h of list) headersSize += Encoder.sizeOfVarIntBytes(h.key) + Encoder.sizeOfVarIntBytes(h.value);
    const sizeOfBody = 1 + // attributes
      Encoder.sizeOfVarLong(timestampDelta) + Encoder.sizeOfVarInt(offsetDelta) +
      Encoder.sizeOfVarIntBytes(key) + Encoder.sizeOfVarIntBytes(value) + headersSize;
    return new Encoder()
      .writeVarInt(sizeOfBody)
      .writeInt8(0)
      .writeVarLong(timestampDelta)
      .writeVarInt(offsetDelta)
      .writeVarIntBytes(key)
      .writeVarIntBytes(value)
      .writeVarIntArray(list.map((h) => new Encoder().writeVarIntString(h.key).writeVarIntBytes(h.value)));
  };
}

type AnyHeader = { readonly key: string; readonly value: Buffer | string | null };

/** The ordered list when Verdict attached one; otherwise kafkajs's own reading of the headers object. */
function orderedHeaders(headers: Record<string | symbol, unknown>): readonly AnyHeader[] {
  const list = headers[WIRE_HEADERS];
  if (Array.isArray(list)) return list as AnyHeader[];
  return Object.keys(headers).flatMap((key) => {
    const v = headers[key];
    const values = Array.isArray(v) ? (v as unknown[]) : [v];
    return values.map((value) => ({ key, value: value as Buffer | string | null }));
  });
}
