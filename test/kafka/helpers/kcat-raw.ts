/**
 * Raw bytes in and out of the mock broker through kcat (librdkafka), an independent client: keys, values
 * and header values as bytes or null, headers in order. What the daemon wrote is compared with this, not
 * with what Verdict's own client reads.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { MockBroker } from '../../../mock-kafka/mock-broker.js';

const execFileAsync = promisify(execFile);

export interface RawHeader {
  readonly key: string;
  readonly value: Buffer | null;
}

export interface RawRecord {
  readonly partition: number;
  readonly offset: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: readonly RawHeader[];
}

/** Bytes as a bash ANSI-C string ($'\xHH…'): argv carries any byte but NUL, which kcat's flags cannot take. */
function ansiC(bytes: Buffer): string {
  if (bytes.includes(0)) throw new Error('kcat cannot take a NUL byte in a key or header');
  return `$'${[...bytes].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')}'`;
}

/**
 * Produces one record with kcat: a null value is sent as NULL (-Z), a null header value as `-H name`. A
 * non-empty value goes as a file (any bytes); an empty or null one as a line on stdin, since kcat skips an
 * empty file (its key must then hold neither 0x01 nor a newline).
 */
export async function produceRaw(broker: MockBroker, topic: string, partition: number, record: Omit<RawRecord, 'partition' | 'offset'>): Promise<void> {
  const args = ['kcat', '-P', '-b', broker.bootstrap.join(','), '-t', topic, '-p', String(partition), '-X', 'acks=all'];
  for (const h of record.headers) {
    args.push('-H', h.value === null ? ansiC(Buffer.from(h.key)) : ansiC(Buffer.concat([Buffer.from(`${h.key}=`), h.value])));
  }
  let command: string;
  if (record.value !== null && record.value.length > 0) {
    const file = join(mkdtempSync(join(tmpdir(), 'verdict-kcat-')), 'value');
    writeFileSync(file, record.value);
    if (record.key !== null) args.push('-k', ansiC(record.key));
    command = `${args.join(' ')} ${file}`;
  } else {
    if (record.value === null) args.push('-Z');
    // kcat skips an empty line: a record with neither key nor value cannot be written this way.
    if (record.key === null) throw new Error('kcat cannot write a record without key and value');
    let line: Buffer;
    {
      if (record.key.includes(1) || record.key.includes(0x0a)) throw new Error('this key needs a non-empty value');
      args.push('-K', "$'\\x01'");
      line = Buffer.concat([record.key, Buffer.from([1, 0x0a])]);
    }
    command = `printf '%s' ${ansiC(line)} | ${args.join(' ')}`;
  }
  await execFileAsync('bash', ['-c', command], { timeout: 30_000 });
}

interface KcatEnvelope {
  partition: number;
  offset: number;
  key: string | null;
  payload: string | null;
  headers?: Array<string | null> | null;
}

/** Every record of `topic`, bytes exact: kcat -J writes strings as raw bytes, so they are read as latin1. */
export async function readRaw(broker: MockBroker, topic: string): Promise<RawRecord[]> {
  const { stdout } = await execFileAsync(
    'kcat', ['-C', '-b', broker.bootstrap.join(','), '-t', topic, '-o', 'beginning', '-e', '-q', '-J'],
    { timeout: 30_000, maxBuffer: 64 * 1024 * 1024, encoding: 'latin1' },
  );
  const bytes = (s: string | null): Buffer | null => (s === null ? null : Buffer.from(s, 'latin1'));
  return stdout.split('\n').filter((line) => line.length > 0).map((line) => {
    const e = JSON.parse(line) as KcatEnvelope;
    const flat = e.headers ?? [];
    const headers: RawHeader[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) headers.push({ key: bytes(flat[i]!)!.toString('utf8'), value: bytes(flat[i + 1]!) });
    return { partition: e.partition, offset: e.offset, key: bytes(e.key), value: bytes(e.payload), headers };
  });
}

/** A header's last value as text, as Verdict reads its own headers. */
export function lastHeader(record: RawRecord, key: string): string | undefined {
  for (let i = record.headers.length - 1; i >= 0; i--) {
    const h = record.headers[i]!;
    if (h.key === key) return h.value?.toString('utf8');
  }
  return undefined;
}
