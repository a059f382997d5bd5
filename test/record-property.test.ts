/**
 * A property over whole transport records (fast-check): null and binary keys and values, null, binary,
 * repeated and look-alike `verdict-*` header values, empty records, valid events in JSON and MessagePack
 * among them. Through the embedded transport and the real engine (block worker, ONNX models), every record
 * ends as exactly one decision or one dead letter that is the input byte for byte, and the stream never
 * stops.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { pack } from 'msgpackr';
import { Engine } from '../runtime/engine.js';
import { EmbeddedLog } from '../streams/embedded/embedded-log.js';
import { HEADER } from '../pipeline/encode-outcome.js';
import { headerBytes, headerText } from '../pipeline/headers.js';
import type { EncodedOutcome } from '../pipeline/outcome.js';
import type { InboundRecord, OutboundRecord } from '../pipeline/record.js';
import { relaxedTimeouts, samplePipeline, samplePipelinePath, transactions } from './helpers/pipelines.js';

const bytes = fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a));
const events = transactions(40, 3, 0.1).map(({ event }) => event);

const header = fc.record({
  key: fc.oneof(fc.constantFrom('dup', 'traceparent', 'x-trace-id', HEADER.errorCode, HEADER.originalHeaders, '1', ''), fc.string({ maxLength: 8 })),
  value: fc.option(bytes, { nil: null }),
});

const value = fc.oneof(
  fc.constant(null),
  fc.constant(Buffer.alloc(0)),
  bytes,
  fc.constantFrom(...events).map((e) => Buffer.from(JSON.stringify(e))),
  fc.constantFrom(...events).map((e) => Buffer.from(pack(e))),
  // A valid event cut short: malformed JSON.
  fc.tuple(fc.constantFrom(...events), fc.nat(40)).map(([e, n]) => Buffer.from(JSON.stringify(e)).subarray(0, n + 1)),
);

const record = fc.record({
  key: fc.option(bytes, { nil: null }),
  value,
  headers: fc.array(header, { maxLength: 6 }),
  partition: fc.integer({ min: 0, max: 1 }),
});

const sameBytes = (a: Buffer | string | null, b: Buffer | null): boolean =>
  a === null || b === null ? a === b : Buffer.from(a).equals(b);

describe('every record, whatever its bytes', () => {
  let engine: Engine;
  before(async () => {
    engine = await Engine.create(relaxedTimeouts(await samplePipeline()), { baseDir: dirname(samplePipelinePath) });
    await engine.prepareStream();
  });
  after(async () => { await engine.close(); });

  test('ends as exactly one decision or one byte-exact dead letter, and the stream never stops', async (t) => {
    let run = 0;
    const seen = { decisions: 0, dead: 0, tombstones: 0, nullHeaders: 0 };
    await fc.assert(fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 40 }), async (generated) => {
      const { input, output } = engine.pipeline;
      const log = new EmbeddedLog();
      log.createTopic(input.topic, 2);
      log.createTopic(output.topic, 2);
      log.createTopic(output.deadLetter, 1);
      await log.producer().send(generated.map((r): OutboundRecord => ({ topic: input.topic, ...r })));
      const delivered = new Map<string, Array<{ encoded: EncodedOutcome; record: InboundRecord }>>();
      const stream = engine.stream(log.consumer({ groupId: `prop-${run++}`, topics: [input.topic] }), log.producer(), {
        onDelivered: (encoded, r) => {
          const at = `${r.partition}/${r.offset}`;
          delivered.set(at, [...(delivered.get(at) ?? []), { encoded, record: r }]);
        },
      });
      for (let waited = 0; delivered.size < generated.length && waited < 20_000; waited += 10) await sleep(10);
      assert.notEqual(stream.state, 'failed', 'the stream never stops');
      assert.deepEqual(await stream.drain(10_000), { drained: true, abandoned: 0 });

      const inputs = [0, 1].flatMap((p) => log.read(input.topic, p, 0));
      assert.equal(inputs.length, generated.length);
      let decisions = 0;
      let dead = 0;
      for (const r of inputs) {
        const outcomes = delivered.get(`${r.partition}/${r.offset}`) ?? [];
        assert.equal(outcomes.length, 1, `exactly one outcome for ${r.partition}/${r.offset}`);
        const { output: out, kind } = outcomes[0]!.encoded;
        assert.ok(sameBytes(out.key, r.key), 'keyed with the input key\'s exact bytes');
        if (kind === 'decision') {
          decisions++;
          continue;
        }
        dead++;
        if (r.value === null) seen.tombstones++;
        if (r.headers.some((h) => h.value === null)) seen.nullHeaders++;
        assert.ok(sameBytes(out.value, r.value), 'the input value, null kept');
        const count = Number(headerText(out.headers, HEADER.originalHeaders));
        assert.equal(count, r.headers.length);
        assert.deepEqual(out.headers.slice(0, count).map(headerBytes), r.headers, 'every input header, in order');
      }
      assert.equal([0, 1].flatMap((p) => log.read(output.topic, p, 0)).length, decisions);
      assert.equal(log.read(output.deadLetter, 0, 0).length, dead);
      seen.decisions += decisions;
      seen.dead += dead;
    }), { numRuns: 60, seed: 20261129 });
    t.diagnostic(JSON.stringify(seen));
    // The generator reached every kind of record the property is about.
    assert.ok(seen.decisions > 20 && seen.dead > 20 && seen.tombstones > 0 && seen.nullHeaders > 0, JSON.stringify(seen));
  });
});
