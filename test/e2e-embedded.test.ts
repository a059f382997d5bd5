import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pack } from 'msgpackr';
import { Engine, type PipelineResult } from '../runtime/engine.js';
import { HEADER } from '../pipeline/encode-outcome.js';
import { EmbeddedLog } from '../streams/embedded/embedded-log.js';
import type { OutboundRecord } from '../pipeline/record.js';
import { relaxedTimeouts, samplePipeline, samplePipelinePath, transactions } from './helpers/pipelines.js';
import { headerMap, headersOf } from './helpers/headers.js';

const N = 3000;

/** Evaluates in blocks, as a caller with bounded concurrency would: the API itself has no backpressure. */
async function evaluateAll(engine: Engine, events: ReadonlyArray<{ event: Record<string, unknown> }>): Promise<PipelineResult[]> {
  const results: PipelineResult[] = [];
  for (let i = 0; i < events.length; i += 200) {
    results.push(...(await Promise.all(events.slice(i, i + 200).map(({ event }) => engine.evaluate(event)))));
  }
  return results;
}

describe('end to end on the embedded transport', () => {
  let engine: Engine;
  before(async () => {
    // Timing is not under test here (the join tests cover it on virtual time): every step must answer.
    // The optional decision headers are asked for, so that they are checked too.
    const file = relaxedTimeouts(await samplePipeline());
    engine = await Engine.create({ ...file, output: { ...file.output, headers: ['pipeline', 'models'] } }, { baseDir: dirname(samplePipelinePath) });
  });
  after(async () => {
    await engine.close();
  });

  test('every input record yields exactly one decision or one dead letter, and offsets are committed', async () => {
    const { input, output } = engine.pipeline;
    const log = new EmbeddedLog();
    log.createTopic(input.topic, 4);
    log.createTopic(output.topic, 4);
    log.createTopic(output.deadLetter, 1);

    const events = transactions(N, 11, 0.05);
    const records: OutboundRecord[] = events.map(({ event }, i) => ({
      topic: input.topic,
      key: String(event['key']),
      // Half JSON, half MessagePack: ingestion sniffs the format per record.
      value: i % 2 === 0 ? JSON.stringify(event) : pack(event),
      headers: headersOf({ 'x-trace-id': `trace-${i}` }),
    }));
    const poison: OutboundRecord[] = [
      { topic: input.topic, key: 'p1', value: '{"id": "p1", "amount": ', headers: [{ key: 'origin', value: 'test' }] },
      { topic: input.topic, key: 'p2', value: JSON.stringify({ id: 'p2', key: 'p2', amount: 'lots' }), headers: [] },
      { topic: input.topic, key: 'p3', value: JSON.stringify([1, 2, 3]), headers: [] },
      { topic: input.topic, key: 'p4', value: Buffer.from([0xc1, 0xff, 0x00]), headers: [] },
      { topic: input.topic, key: 'p5', value: JSON.stringify({ ...events[0]?.event, id: 'p5', hour_of_day: 31 }), headers: [] },
    ];
    const all = [...records.slice(0, N / 2), ...poison, ...records.slice(N / 2)];
    await log.producer().send(all);

    const stream = engine.stream(log.consumer({ groupId: 'e2e', topics: [input.topic] }), log.producer());
    await log.waitForRecords(output.topic, N);
    await log.waitForRecords(output.deadLetter, poison.length);
    const result = await stream.drain(10_000);
    assert.deepEqual(result, { drained: true, abandoned: 0 });

    const decisions = [0, 1, 2, 3].flatMap((p) => log.read(output.topic, p, 0));
    const dead = log.read(output.deadLetter, 0, 0);
    assert.equal(decisions.length, N, 'one decision per good event');
    assert.equal(dead.length, poison.length, 'one dead letter per poison record');

    const ids = new Set(decisions.map((r) => headerMap(r.headers)[HEADER.eventId]));
    assert.equal(ids.size, N, 'no event decided twice');
    for (const { event } of events) assert.ok(ids.has(String(event['id'])), `event ${String(event['id'])} decided`);

    // Decisions are keyed like their input and carry the trace id and model versions.
    const first = decisions.find((r) => headerMap(r.headers)[HEADER.eventId] === events[0]?.event['id']);
    assert.equal(first?.key?.toString(), String(events[0]?.event['key']));
    assert.equal(headerMap(first?.headers)[HEADER.traceId], 'trace-0');
    assert.match(headerMap(first?.headers)[HEADER.models] ?? '', /gbt=fraud_gbt@3/);
    assert.equal(headerMap(first?.headers)[HEADER.pipeline], engine.pipeline.name);
    const body = JSON.parse(first?.value?.toString() ?? '{}') as { action: string; completeness: Record<string, string> };
    assert.ok(['approve', 'review', 'decline'].includes(body.action));
    assert.equal(body.completeness['gbt'], 'ok');

    // Dead letters keep the original bytes and headers and say why.
    const p1 = dead.find((r) => r.key?.toString() === 'p1');
    assert.equal(p1?.value?.toString(), '{"id": "p1", "amount": ');
    assert.equal(headerMap(p1?.headers)['origin'], 'test');
    assert.equal(headerMap(p1?.headers)[HEADER.errorCode], 'INPUT_DECODE_FAILED');
    assert.equal(headerMap(p1?.headers)[HEADER.sourceTopic], input.topic);
    assert.ok(headerMap(p1?.headers)[HEADER.sourceOffset] !== undefined);
    const codes = dead.map((r) => headerMap(r.headers)[HEADER.errorCode]).sort();
    assert.deepEqual(codes, ['INPUT_DECODE_FAILED', 'INPUT_DECODE_FAILED', 'INPUT_DECODE_FAILED', 'INPUT_SCHEMA_MISMATCH', 'INPUT_SCHEMA_MISMATCH']);

    // Everything read was committed.
    assert.deepEqual(log.committed('e2e', input.topic), log.endOffsets(input.topic));
  });

  test('fraud-like events are declined or reviewed far more often than legitimate ones', async () => {
    const events = transactions(1500, 23, 0.1);
    const results = await evaluateAll(engine, events);
    const flagged = (fraud: boolean): number => {
      const group = results.filter((_, i) => events[i]?.isFraud === fraud);
      return group.filter((r) => r.decision !== null && r.decision.action !== 'approve').length / group.length;
    };
    const fraudRate = flagged(true);
    const legitRate = flagged(false);
    assert.ok(fraudRate > 0.4, `fraud flagged ${fraudRate}`);
    assert.ok(legitRate < 0.05, `legit flagged ${legitRate}`);
    assert.ok(fraudRate > 10 * legitRate);
  });

  test('the cascade runs the MLP only when the trees see risk', async () => {
    const events = transactions(600, 5, 0.1);
    const results = await evaluateAll(engine, events);
    let ran = 0;
    for (const r of results) {
      assert.ok(r.decision !== null);
      const gbt = r.outputs['gbt']?.['fraud_probability'] as number;
      const status = r.decision.completeness['mlp'];
      if (gbt > 0.3) { assert.equal(status, 'ok'); ran++; } else assert.equal(status, 'skipped');
    }
    assert.ok(ran > 0 && ran < results.length, `mlp ran for ${ran} of ${results.length}`);
  });
});
