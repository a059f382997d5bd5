/**
 * Decision records: keyed like the input, the event id always in a header, the input's trace id when it
 * had one (never a made-up one), and the pipeline and model headers only when the pipeline asks for them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Decision } from '../pipeline/decide/decision-actor.js';
import { encodeDecision, HEADER } from '../pipeline/encode-outcome.js';
import type { DecisionOutcome } from '../pipeline/outcome.js';
import type { Headers } from '../pipeline/record.js';
import { headerBytesOf, headersOf } from './helpers/headers.js';

const decision: Decision = {
  eventId: 'tx-1', key: 'card-7', pipeline: 'card-risk', action: 'approve', score: 0.12, reasons: [],
  models: { gbt: 'fraud_gbt@3', anomaly: 'txn_autoencoder@2' }, outputs: {}, completeness: { gbt: 'ok', anomaly: 'ok' },
  complete: true, policy: 'rules', latencyMs: { total: 1.234 },
};

const decided = (headers: Headers): DecisionOutcome => ({
  kind: 'decision', decision,
  record: { topic: 'transactions', partition: 1, offset: 9, timestamp: 0, key: Buffer.from('card-7'), value: Buffer.from('{}'), headers },
});

describe('decision records', () => {
  test('by default: the event id, and nothing the value already says', () => {
    const out = encodeDecision(decided(headerBytesOf({ 'x-source': 'pos' })), { topic: 'decisions' });
    assert.equal(out.topic, 'decisions');
    assert.deepEqual(out.key, Buffer.from('card-7'));
    assert.deepEqual(out.headers, [{ key: HEADER.eventId, value: 'tx-1' }]);
    assert.deepEqual(JSON.parse(String(out.value)), decision);
  });

  test('the input\'s trace id is carried, W3C traceparent first', () => {
    const out = encodeDecision(decided(headerBytesOf({ 'x-trace-id': 'b', traceparent: '00-abc-01' })), { topic: 'decisions', headers: [] });
    assert.deepEqual(out.headers, headersOf({ [HEADER.eventId]: 'tx-1', [HEADER.traceId]: '00-abc-01' }));
  });

  test('pipeline and model headers when asked for', () => {
    const out = encodeDecision(decided(headerBytesOf({ 'trace-id': 't' })), { topic: 'decisions', headers: ['models', 'pipeline'] });
    assert.deepEqual(out.headers, headersOf({
      [HEADER.eventId]: 'tx-1', [HEADER.traceId]: 't', [HEADER.models]: 'gbt=fraud_gbt@3,anomaly=txn_autoencoder@2', [HEADER.pipeline]: 'card-risk',
    }));
  });
});
