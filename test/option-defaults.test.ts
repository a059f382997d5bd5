/**
 * Defaults live only in the zod schemas: a component built without options runs with exactly its schema's
 * defaults, a config block left out defaults to its own schema's defaults, no library file falls back to
 * a literal for an option, and the compiler keeps optional fields exact.
 */
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { VirtualTimeScheduler } from 'rxjs';
import { daemonFileSchema } from '../config/daemon-schema.js';
import {
  BROKER_FETCH_WAIT_MS, dlqReplaySchema, kafkaConsumerTimingsSchema, kafkaConsumingSchema, kafkaOptionsSchema, kafkaProducerSchema, kafkaSinkSchema,
  kafkaSourceSchema,
} from '../config/kafka-options.js';
import { batchPolicySchema, pipelineFileSchema } from '../config/pipeline-schema.js';
import { streamOptionsSchema } from '../config/stream-options.js';
import { ConfigError } from '../core/errors.js';
import { parseOptions } from '../core/options.js';
import { packageRoot } from '../core/paths.js';
import { piscinaRunnerSchema, PiscinaRunner } from '../runtime/workers/piscina-runner.js';
import { sessionThreadSchema } from '../models/runner.js';
import { blockPoolSchema } from '../runtime/block-pool.js';
import { replayDeadLetters } from '../streams/dlq-replay.js';
import { EmbeddedLog, embeddedLogSchema } from '../streams/embedded/embedded-log.js';
import { embeddedSourceSchema } from '../streams/embedded/embedded-source.js';
import type { ConsumerSettings, KafkaClientFactory, ProducerLike, ProducerSettings } from '../streams/kafka/kafka-client.js';
import { KafkaSink } from '../streams/kafka/kafka-sink.js';
import { KafkaSource } from '../streams/kafka/kafka-source.js';
import type { SourceEvent } from '../streams/types.js';
import { FakeAdmin, FakeConsumer, settle } from './kafka/helpers/fake-kafka.js';

/** A client factory that records what the component asked for, with a producer that accepts everything. */
function recordingFactory(admin?: FakeAdmin) {
  const consumers: ConsumerSettings[] = [];
  const producers: ProducerSettings[] = [];
  const producer: ProducerLike = { connect: () => Promise.resolve(), sendBatch: () => Promise.resolve([]), disconnect: () => Promise.resolve() };
  const factory: KafkaClientFactory = {
    consumer: (settings) => { consumers.push(settings); return new FakeConsumer(); },
    producer: (settings) => { producers.push(settings); return producer; },
    admin: () => {
      assert.ok(admin, 'no admin expected');
      return admin;
    },
    partitionReader: () => { throw new Error('not used'); },
  };
  return { factory, consumers, producers };
}

describe('option defaults come only from the schemas', () => {
  test('tsconfig keeps exactOptionalPropertyTypes on, so an optional field cannot be handed undefined', async () => {
    const tsconfig = JSON.parse(await readFile(join(packageRoot, 'tsconfig.json'), 'utf8')) as { compilerOptions: Record<string, unknown> };
    assert.equal(tsconfig.compilerOptions['exactOptionalPropertyTypes'], true);
    assert.equal(tsconfig.compilerOptions['strict'], true);
  });

  test('parseOptions applies the schema defaults, treats undefined as absent and names a bad field', () => {
    assert.deepEqual(parseOptions(streamOptionsSchema, { blockSize: undefined }, 'stream'), streamOptionsSchema.parse({}));
    assert.throws(() => parseOptions(streamOptionsSchema, { blockSize: 0 }, 'stream options'), (err: unknown) =>
      err instanceof ConfigError && err.code === ConfigError.code && /stream options is invalid:\n {2}blockSize:/.test(err.message));
  });

  test('the old stream.chunkSize is refused with its new name, not as an unknown key', () => {
    assert.throws(() => parseOptions(streamOptionsSchema, { chunkSize: 64 }, 'stream'), (err: unknown) =>
      err instanceof ConfigError && /chunkSize: chunkSize was renamed blockSize/.test(err.message));
  });

  test('a KafkaSource without tuning consumes with the timings and settings of kafkaSourceSchema, which the daemon shares', async () => {
    // A real cluster's id: the fetch wait left open is then Kafka's default (fetch-wait.test.ts has the mock's).
    const { factory, consumers } = recordingFactory(new FakeAdmin());
    const source = new KafkaSource({ brokers: ['unused:9092'], clientId: 'c', groupId: 'g', topics: ['t'] }, { factory, scheduler: new VirtualTimeScheduler() });
    const subscription = source.events$.subscribe({ next: (_: SourceEvent) => undefined });
    await settle();
    const { restartBackoff: _backoff, stallTimeoutMs: _stall, crashLoopThreshold: _threshold, maxWaitTimeInMs, ...consuming } = kafkaSourceSchema.parse({});
    assert.equal(maxWaitTimeInMs, undefined, 'left open: chosen from the broker');
    assert.deepEqual(consumers, [{ groupId: 'g', topics: ['t'], ...consuming, maxWaitTimeInMs: BROKER_FETCH_WAIT_MS }]);
    // The daemon's `kafka` block parses through the same shapes: the two cannot drift apart.
    const daemon = kafkaOptionsSchema.parse({ brokers: ['k:9092'] });
    const { maxWaitTimeInMs: _replayWait, ...timings } = kafkaConsumerTimingsSchema.parse({});
    for (const [key, value] of Object.entries({ ...timings, ...kafkaConsumingSchema.parse({}) })) {
      assert.equal(daemon[key as keyof typeof daemon], value, key);
    }
    assert.equal(daemon.maxWaitTimeInMs, undefined, 'the daemon leaves the fetch wait to the broker too');
    // The dead-letter replay's reader keeps Kafka's default: it reads up to watermarks it knows, so a fetch rarely waits.
    assert.equal(kafkaConsumerTimingsSchema.parse({}).maxWaitTimeInMs, BROKER_FETCH_WAIT_MS);
    subscription.unsubscribe();
    await source.close();
  });

  test('a KafkaSink without producer options produces with kafkaProducerSchema defaults', async () => {
    const { factory, producers } = recordingFactory();
    const sink = new KafkaSink({ brokers: ['unused:9092'], clientId: 'c' }, { factory });
    assert.deepEqual(producers, [kafkaProducerSchema.parse({})]);
    assert.deepEqual(kafkaSinkSchema.parse({}).producer, kafkaOptionsSchema.parse({ brokers: ['k:9092'] }).producer);
    await sink.close();
  });

  test('a dead-letter replay without tuning reads with the consumer timings and produces with the producer defaults', async () => {
    const admin = new FakeAdmin();
    admin.ends.set(0, 1);
    const { factory, consumers, producers } = recordingFactory(admin);
    const scheduler = new VirtualTimeScheduler();
    const replay = replayDeadLetters(factory, { from: 'dlq', to: 'in', scheduler });
    await settle();
    scheduler.flush();
    const report = await replay;
    const defaults = dlqReplaySchema.parse({});
    assert.equal(consumers.length, 1);
    const { groupId: _group, ...settings } = consumers[0] as ConsumerSettings;
    assert.deepEqual(settings, { topics: ['dlq'], fromBeginning: true, partitionsConsumedConcurrently: 1, ...defaults.consumer });
    assert.deepEqual(defaults.consumer, kafkaConsumerTimingsSchema.parse({}));
    assert.deepEqual(producers, [kafkaProducerSchema.parse({})]);
    // Nothing arrived: the replay gave up after the default idle timeout, on virtual time.
    assert.equal(scheduler.frame, defaults.idleTimeoutMs);
    assert.deepEqual(report.incomplete, [{ partition: 0, reached: 0, highWatermark: 1 }]);
  });

  test('the embedded log and its consumers default as embeddedLogSchema and embeddedSourceSchema say', async () => {
    const log = new EmbeddedLog();
    const { maxBatchSize } = embeddedSourceSchema.parse({});
    const count = maxBatchSize + 7;
    // The topic is created on first use, with the default partition count.
    log.append(Array.from({ length: count }, (_, i) => ({ topic: 't', key: null, value: String(i), headers: [] })));
    assert.equal(log.partitionCount('t'), embeddedLogSchema.parse({}).defaultPartitions);
    const scheduler = new VirtualTimeScheduler();
    const source = log.consumer({ groupId: 'g', topics: ['t'], scheduler });
    const batches: number[] = [];
    const subscription = source.events$.subscribe((e) => { if (e.type === 'batch') batches.push(e.batch.records.length); });
    scheduler.flush();
    assert.deepEqual(batches, [maxBatchSize, count - maxBatchSize], 'the first batch is cut at the default maxBatchSize (from offset 0: resetTo earliest)');
    subscription.unsubscribe();
    await source.close();
  });

  test('an inference pool without options has the schema default of threads', async () => {
    const pool = new PiscinaRunner();
    try {
      assert.equal(pool.threads, piscinaRunnerSchema.parse({}).threads);
    } finally {
      await pool.close();
    }
    assert.deepEqual(piscinaRunnerSchema.parse({}), { ...sessionThreadSchema.parse({}), threads: 1, maxQueue: 64 });
    assert.deepEqual(blockPoolSchema.parse({}), { blocksPerWorker: 64 });
  });

  test('a config block left out defaults to what its own schema gives an empty block', () => {
    const daemon = daemonFileSchema.parse({ pipeline: 'p.yaml', kafka: { brokers: ['k:9092'] } });
    assert.deepEqual(daemon.stream, streamOptionsSchema.parse({}));
    assert.deepEqual(daemon.shutdown, daemonFileSchema.shape.shutdown.parse({}));
    assert.deepEqual(daemon.metrics, daemonFileSchema.shape.metrics.parse({}));
    assert.deepEqual(daemon.log, daemonFileSchema.shape.log.parse({}));
    assert.equal(daemon.kafka.sasl, null, 'the compiled kafka block has no optional field: no SASL is null');

    const minimal = {
      pipeline: 'p', schemas: { s: { fields: { id: { type: 'string' } } } }, input: { schema: 's', features: { dense: [{ field: 'amount' }] } },
      steps: [{ id: 'm', model: 'm', inputs: { x: 'features.dense' } }], decision: {},
    };
    const file = pipelineFileSchema.parse(minimal);
    const { shape } = pipelineFileSchema;
    assert.deepEqual(file.join, shape.join.parse({}));
    assert.deepEqual(file.output, shape.output.parse({}));
    assert.deepEqual(file.models, shape.models.parse({}));
    assert.deepEqual(file.runtime, shape.runtime.parse({}));
    assert.equal(file.description, '');
    // Batching left out entirely compiles to the one policy schema's defaults (compile-pipeline.ts parses through it).
    assert.deepEqual(batchPolicySchema.parse({ ...file.models.batching }), batchPolicySchema.parse({}));
  });

  test('no library file falls back to a literal for an option: the default is the schema\'s', async () => {
    // `options.x ?? 64`, `opts.y || 'warn'`: a default repeated outside its schema. Empty fallbacks (`?? []`,
    // `?? {}`, `?? ''`) stand for "nothing given", not for a default value, and are left alone.
    const fallback = /\b(?:options|opts|deps|config|settings|data|flags)\??\.[A-Za-z]\w*\s*(?:\?\?|\|\|)\s*(?:-?\d|'[^']|"[^"]|true\b|false\b)/;
    const offenders: string[] = [];
    for (const dir of ['core', 'config', 'models', 'actors', 'pipeline', 'streams', 'runtime', 'cli']) {
      for (const file of await tsFiles(join(packageRoot, dir))) {
        const lines = (await readFile(file, 'utf8')).split('\n');
        lines.forEach((line, i) => {
          if (fallback.test(line)) offenders.push(`${relative(packageRoot, file)}:${i + 1}: ${line.trim()}`);
        });
      }
    }
    assert.deepEqual(offenders, []);
  });
});

async function tsFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(entries.map(async (e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  }));
  return nested.flat();
}
