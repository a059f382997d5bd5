/**
 * The per-record input limits end to end on the embedded transport, through the real engine (the sample
 * pipeline with its per-key state stage and ONNX models), with blocks in a block worker and on the main
 * thread: records at each limit are decided; records one past it (and a 50 MB value) are dead-lettered byte
 * for byte with the limit's code, counted by code in the scraped /metrics; the programmatic API refuses an
 * event object past a limit with the same code.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { describe, test } from 'node:test';
import { pack } from 'msgpackr';
import type { PipelineFile } from '../config/pipeline-schema.js';
import { NestingTooDeepError, RecordTooLargeError, StringTooLongError, TooManyFieldsError } from '../core/errors.js';
import { createMetrics } from '../core/metrics.js';
import { startMetricsServer } from '../core/metrics-server.js';
import { HEADER } from '../pipeline/encode-outcome.js';
import { headerText } from '../pipeline/headers.js';
import type { OutboundRecord, RecordHeader } from '../pipeline/record.js';
import { Engine } from '../runtime/engine.js';
import { EmbeddedLog } from '../streams/embedded/embedded-log.js';
import { relaxedTimeouts, samplePipeline, samplePipelinePath, transactions } from './helpers/pipelines.js';

const LIMITS = { maxRecordBytes: 2048, maxDepth: 4, maxFields: 40, maxStringLength: 256 };

/** The sample pipeline with tight input limits, its blocks in one block worker or on the main thread. */
function limited(workers: 0 | 1) {
  return (file: PipelineFile): PipelineFile => ({
    ...relaxedTimeouts(file),
    input: { ...file.input, limits: LIMITS },
    runtime: { ...file.runtime, mode: 'blocks', workers },
  });
}

interface Case {
  readonly name: string;
  /** The event id, for a case that is decided. */
  readonly id: string;
  readonly key: Buffer;
  readonly value: Buffer;
  readonly headers: RecordHeader[];
  /** The dead letter's code, or null: decided. */
  readonly code: string | null;
}

/** Sample events grown to each limit (decided) and one past it (dead-lettered), in JSON and MessagePack. */
function cases(withFiftyMb: boolean): Case[] {
  const base = transactions(12, 31).map(({ event }) => event);
  let n = 0;
  const next = (): Record<string, unknown> => ({ ...base[n++ % base.length]!, id: `lim-${n}` });
  // The sample event has 14 fields (12 keys, 2 in device) and 2 levels: `tags` adds itself and its items.
  const out: Case[] = [];
  for (const format of ['json', 'msgpack'] as const) {
    const enc = (e: unknown): Buffer => (format === 'json' ? Buffer.from(JSON.stringify(e)) : pack(e));
    const add = (name: string, e: Record<string, unknown>, code: string | null, headers: RecordHeader[] = []): void => {
      out.push({ name: `${format} ${name}`, id: String(e['id']), key: Buffer.from(String(e['key'])), value: enc(e), headers, code });
    };
    add('plain', next(), null);
    add('depth at max', { ...next(), x: { y: { z: {} } } }, null);
    add('depth over', { ...next(), x: { y: { z: { w: [] } } } }, NestingTooDeepError.code);
    add('deep array over', { ...next(), x: [[[[]]]] }, NestingTooDeepError.code);
    add('fields at max', { ...next(), tags: Array.from({ length: 25 }, (_, i) => i) }, null);
    add('fields over', { ...next(), tags: Array.from({ length: 26 }, (_, i) => i) }, TooManyFieldsError.code);
    add('string at max', { ...next(), note: 'é'.repeat(256) }, null);
    add('string over', { ...next(), note: 'é'.repeat(257) }, StringTooLongError.code);
    add('key at max', { ...next(), ['k'.repeat(256)]: 1 }, null);
    add('key over', { ...next(), ['k'.repeat(257)]: 1 }, StringTooLongError.code);
    // The record's bytes: a header fills key + value + headers to the bound exactly, then one byte past it.
    for (const [name, extra, code] of [['size at max', 0, null], ['size over', 1, RecordTooLargeError.code]] as const) {
      const e = next();
      const fill = LIMITS.maxRecordBytes - enc(e).length - String(e['key']).length - 'pad'.length + extra;
      add(name, e, code, [{ key: 'pad', value: Buffer.alloc(fill, 0x2e) }]);
    }
  }
  if (withFiftyMb) {
    const value = Buffer.alloc(50 * 1024 * 1024, 0x61);
    value.write('{"id":"lim-huge","note":"', 0);
    value.write('"}', value.length - 2);
    out.push({ name: '50 MB', id: 'lim-huge', key: Buffer.from('card-000001'), value, headers: [{ key: 'traceparent', value: Buffer.from('00-abc') }], code: RecordTooLargeError.code });
  }
  return out;
}

for (const workers of [1, 0] as const) {
  describe(`input limits through the engine, blocks ${workers === 1 ? 'in a block worker' : 'on the main thread'}`, () => {
    test('each limit: at it decided, past it a byte-exact dead letter with its code, counted by code in /metrics', async () => {
      const metrics = createMetrics();
      const engine = await Engine.create(await samplePipeline(limited(workers)), { baseDir: dirname(samplePipelinePath), metrics });
      const server = await startMetricsServer({ registry: metrics.registry, remote: () => engine.workerMetrics(), host: '127.0.0.1', port: 0, ready: () => true });
      try {
        assert.equal(engine.pipeline.placement.blocks, workers === 1 ? 'workers' : 'main-thread');
        assert.deepEqual(engine.pipeline.input.limits, LIMITS);
        const { input, output } = engine.pipeline;
        const log = new EmbeddedLog();
        log.createTopic(input.topic, 2);
        log.createTopic(output.topic, 1);
        log.createTopic(output.deadLetter, 1);
        const all = cases(workers === 0);
        await log.producer().send(all.map((c): OutboundRecord => ({ topic: input.topic, key: c.key, value: c.value, headers: c.headers })));
        const decided = all.filter((c) => c.code === null).length;
        const dead = all.length - decided;
        const stream = engine.stream(log.consumer({ groupId: `limits-${workers}`, topics: [input.topic] }), log.producer());
        await log.waitForRecords(output.topic, decided);
        await log.waitForRecords(output.deadLetter, dead);
        assert.deepEqual(await stream.drain(20_000), { drained: true, abandoned: 0 });

        const letters = log.read(output.deadLetter, 0, 0);
        const refused = all.filter((c) => c.code !== null);
        assert.equal(letters.length, refused.length);
        for (const c of refused) {
          const letter = letters.find((l) => l.key?.equals(c.key) && l.value?.equals(c.value));
          assert.ok(letter !== undefined, `${c.name}: a dead letter with the input's key and value, byte for byte`);
          assert.equal(headerText(letter.headers, HEADER.errorCode), c.code, c.name);
          assert.deepEqual(letter.headers.slice(0, c.headers.length), c.headers, `${c.name}: the input's headers first, as they were`);
          assert.equal(headerText(letter.headers, HEADER.originalHeaders), String(c.headers.length));
        }
        const decisions = log.read(output.topic, 0, 0);
        assert.deepEqual(decisions.map((d) => headerText(d.headers, HEADER.eventId)).sort(), all.filter((c) => c.code === null).map((c) => c.id).sort());

        const scraped = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
        for (const code of [NestingTooDeepError.code, TooManyFieldsError.code, StringTooLongError.code, RecordTooLargeError.code]) {
          const want = all.filter((c) => c.code === code).length;
          assert.match(scraped, new RegExp(`verdict_dead_letters_total\\{pipeline="card-risk",code="${code}"\\} ${want}\\b`), code);
        }
      } finally {
        await server.close();
        await engine.close();
      }
    });
  });
}

describe('input limits on the programmatic API', () => {
  test('an event object past a limit is a dead-letter outcome with its code; at the limits it is decided', async () => {
    const engine = await Engine.create(await samplePipeline(limited(0)), { baseDir: dirname(samplePipelinePath) });
    try {
      const [e] = transactions(1, 5).map(({ event }) => event);
      for (const extra of [{ tags: Array.from({ length: 25 }, (_, i) => i) }, { x: { y: { z: {} } } }, { note: 'n'.repeat(256) }, { ['k'.repeat(256)]: true }]) {
        assert.equal((await engine.evaluate({ ...e, ...extra })).outcome.kind, 'decision', Object.keys(extra)[0]);
      }
      for (const [extra, code] of [
        [{ x: { y: { z: { w: {} } } } }, NestingTooDeepError.code],
        [{ tags: Array.from({ length: 26 }, (_, i) => i) }, TooManyFieldsError.code],
        [{ note: 'n'.repeat(257) }, StringTooLongError.code],
        [{ ['k'.repeat(257)]: true }, StringTooLongError.code],
      ] as const) {
        const result = await engine.evaluate({ ...e, ...extra });
        assert.equal(result.decision, null);
        assert.equal(result.outcome.kind === 'dead-letter' && result.outcome.error.code, code);
      }
    } finally {
      await engine.close();
    }
  });
});
