/**
 * The block wire: records and encoded outcomes survive the trip through one packed buffer byte for byte, with
 * null keys kept null, string keys and values encoded as UTF-8, and every field beside the bytes intact;
 * and the packed buffer is what a structured clone transfers (the sender's copy is detached).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { outcomesFromWire, outcomesToWire, fromWire, toWire } from '../runtime/block-wire.js';
import type { EncodedOutcome } from '../pipeline/outcome.js';
import type { InboundRecord } from '../pipeline/record.js';

const record = (offset: number, key: Buffer | null, value: Buffer | null): InboundRecord => ({
  topic: 'tx', partition: 2, offset, timestamp: 1_700_000_000_000 + offset, headers: [
    { key: 'trace-id', value: Buffer.from(`t${offset}`) },
    { key: 'bin', value: Buffer.from([0xff, 0xfe, 0x80, 0x41]) },
    { key: 'trace-id', value: null },
  ], key, value,
});

describe('block wire', () => {
  test('records round-trip through one transferred buffer', () => {
    // Values that are views into a larger pool, as Kafka and the embedded log hand them out.
    const pool = Buffer.from('xxxxcard-1{"id":"a"}card-2{"amount":12.5,"note":"é"}yyyy');
    const records = [
      record(7, pool.subarray(4, 10), pool.subarray(10, 20)),
      record(8, null, Buffer.from('{"broken":')),
      record(9, pool.subarray(20, 26), null),
      record(10, Buffer.alloc(0), Buffer.alloc(0)),
    ];
    const { block, transfer } = toWire(records);
    assert.deepEqual(transfer, [block.bytes]);
    // Keys and values, then each record's header values (t7, t8, t9, t10 and FF FE 80 41; null takes none).
    assert.equal(block.bytes.byteLength, 6 + 10 + 10 + 6 + (2 + 2 + 2 + 3) + 4 * 4);
    const back = fromWire(structuredClone(block, { transfer }));
    assert.equal(block.bytes.byteLength, 0, 'the sender\'s buffer is detached: it was moved, not copied');
    assert.deepEqual(back, records);
  });

  test('encoded outcomes round-trip: string and Buffer bytes become Buffers, null keys stay null', () => {
    const encoded: EncodedOutcome[] = [
      { kind: 'decision', label: 'approve', eventId: 'e1', output: { topic: 'decisions', key: 'card-1', value: '{"action":"approve","note":"ü"}', headers: [{ key: 'verdict-event-id', value: 'e1' }, { key: 'raw', value: Buffer.from([0, 0xff]) }, { key: 'none', value: null }] } },
      { kind: 'dead-letter', label: 'DECODE_FAILED', output: { topic: 'dlq', key: null, value: Buffer.from([0, 1, 2, 255]), headers: [], partition: 0 } },
      { kind: 'decision', label: 'review', eventId: 'e3', output: { topic: 'decisions', key: Buffer.from('card-3'), value: '', headers: [] } },
    ];
    const { reply, transfer } = outcomesToWire(encoded);
    const back = outcomesFromWire(structuredClone(reply, { transfer }));
    assert.equal(reply.bytes.byteLength, 0, 'the worker\'s buffer is detached: it was moved, not copied');
    assert.equal(back.length, 3);
    const [a, b, c] = back;
    assert.deepEqual({ ...a, output: { ...a?.output, key: null, value: '', headers: [] } }, { ...encoded[0], output: { ...encoded[0]?.output, key: null, value: '', headers: [] } });
    assert.deepEqual(a?.output.headers, [
      { key: 'verdict-event-id', value: 'e1' }, { key: 'raw', value: Buffer.from([0, 0xff]) }, { key: 'none', value: null },
    ], 'headers come back in order: text as text, bytes as bytes, null kept');
    assert.ok(Buffer.isBuffer(a?.output.key) && Buffer.isBuffer(a.output.value));
    assert.equal(a.output.key.toString(), 'card-1');
    assert.equal(a.output.value.toString(), '{"action":"approve","note":"ü"}');
    assert.equal(b?.output.key, null);
    assert.equal(b?.output.partition, 0);
    assert.equal(b?.label, 'DECODE_FAILED');
    assert.equal(b?.eventId, undefined);
    assert.deepEqual([...(b?.output.value as Buffer)], [0, 1, 2, 255]);
    assert.equal((c?.output.key as Buffer).toString(), 'card-3');
    assert.equal((c?.output.value as Buffer).length, 0);
    assert.equal('partition' in (c?.output ?? {}), false);
  });
});
