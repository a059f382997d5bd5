/**
 * Reading and writing record headers (see `Headers` in types.ts): an ordered list of (name, bytes or null),
 * so nothing here decodes, merges or drops a header that is only passed through.
 */
import type { Headers, OutboundHeader, RecordHeader } from './record.js';

/** Most records carry no headers; one frozen list spares an allocation per record. */
export const NO_HEADERS: Headers = Object.freeze([]);

/**
 * The last value of a header as UTF-8 text, as the Java client's `lastHeader`; undefined when it is absent
 * or null. For headers Verdict itself reads (trace ids, its own `verdict-*` headers), never for pass-through.
 */
export function headerText(headers: readonly (RecordHeader | OutboundHeader)[], key: string): string | undefined {
  for (let i = headers.length - 1; i >= 0; i--) {
    const h = headers[i]!;
    if (h.key !== key) continue;
    if (h.value === null) return undefined;
    return typeof h.value === 'string' ? h.value : h.value.toString('utf8');
  }
  return undefined;
}

/** An outbound header as the bytes it will carry: strings are written as UTF-8, null stays null. */
export function headerBytes(header: OutboundHeader): RecordHeader {
  const { key, value } = header;
  return typeof value === 'string' ? { key, value: Buffer.from(value, 'utf8') } : { key, value };
}
