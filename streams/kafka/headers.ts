/**
 * Kafka record headers into Verdict's `Headers` (string → string). Outgoing headers need no mapping: the
 * client encodes string values as UTF-8.
 *
 * On the wire a header value is bytes and a key may repeat; clients hand them over as a Buffer, a string,
 * or, for a repeated key, an array. Verdict's headers are UTF-8 text with one value per key, so a repeated
 * key keeps its last value, as the Java client's `lastHeader` does.
 */
import type { Headers } from '../types.js';

type WireValue = Buffer | string | ReadonlyArray<Buffer | string> | undefined;

export type WireHeaders = Readonly<Record<string, WireValue>>;

const text = (value: Buffer | string): string => (typeof value === 'string' ? value : value.toString('utf8'));

export function decodeHeaders(wire: WireHeaders | undefined): Headers {
  if (wire === undefined) return EMPTY;
  const headers: Record<string, string> = {};
  let any = false;
  for (const [key, value] of Object.entries(wire)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      const last = (value as ReadonlyArray<Buffer | string>).at(-1);
      if (last === undefined) continue;
      headers[key] = text(last);
    } else {
      headers[key] = text(value as Buffer | string);
    }
    any = true;
  }
  return any ? headers : EMPTY;
}

// Most records carry no headers; one frozen object spares an allocation per record.
const EMPTY: Headers = Object.freeze({});
