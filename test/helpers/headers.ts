/** Headers in tests: written from an object, read back as one (the last value of a name wins, as lastHeader). */
import type { OutboundHeader, RecordHeader } from '../../pipeline/record.js';

/** `{ a: '1' }` → `[{ key: 'a', value: '1' }]`, in the object's order. */
export function headersOf(o: Readonly<Record<string, string>>): OutboundHeader[] {
  return Object.entries(o).map(([key, value]) => ({ key, value }));
}

/** Header values as UTF-8 text by name (null values as null); for assertions that do not need bytes. */
export function headerMap(headers: readonly (RecordHeader | OutboundHeader)[]): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const h of headers) out[h.key] = h.value === null ? null : typeof h.value === 'string' ? h.value : h.value.toString('utf8');
  return out;
}

/** `{ a: '1' }` → `[{ key: 'a', value: <bytes of '1'> }]`: headers as a transport hands them over. */
export function headerBytesOf(o: Readonly<Record<string, string>>): RecordHeader[] {
  return Object.entries(o).map(([key, value]) => ({ key, value: Buffer.from(value) }));
}
