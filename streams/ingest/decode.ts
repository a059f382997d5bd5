/** Decoding record values: JSON or MessagePack, chosen by configuration or sniffed from the first byte. */
import { Unpackr } from 'msgpackr';
import { DecodeError } from '../../core/errors.js';

export type WireFormat = 'json' | 'msgpack' | 'auto';

const OPEN_BRACE = 0x7b;
// Plain maps, not msgpackr records: input comes from other producers that know nothing of shared structures.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export function decodeValue(value: Buffer | null, format: WireFormat): Record<string, unknown> {
  if (value === null || value.length === 0) throw new DecodeError('record has no value');
  const useJson = format === 'json' || (format === 'auto' && firstNonSpace(value) === OPEN_BRACE);
  let decoded: unknown;
  try {
    decoded = useJson ? JSON.parse(value.toString('utf8')) : unpackr.unpack(value);
  } catch (err) {
    throw new DecodeError(`value is not valid ${useJson ? 'JSON' : 'MessagePack'}: ${(err as Error).message}`, { cause: err });
  }
  if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded)) {
    throw new DecodeError(`value must be an object, got ${Array.isArray(decoded) ? 'an array' : typeof decoded}`);
  }
  return decoded as Record<string, unknown>;
}

function firstNonSpace(buf: Buffer): number | undefined {
  for (let i = 0; i < buf.length && i < 16; i++) {
    const b = buf[i] as number;
    if (b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) return b;
  }
  return buf[0];
}
