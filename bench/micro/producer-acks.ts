/**
 * How a librdkafka producer learns that a round of records was acknowledged, and what each way costs: the
 * measurement behind LibrdkafkaProducer's per-record delivery reports (streams/kafka/librdkafka-producer.ts).
 * Every variant produces Verdict's decisions (bench/micro/sample-outputs.ts) through a KafkaSink, so rounds
 * are merged exactly as Verdict merges them (blocks of 128 records, at most 2 rounds outstanding, up to
 * 4,096 records a round), to 16 partitions with acks -1, on the mock broker:
 *
 * - `raw-dr`: @confluentinc/kafka-javascript's native Producer, a delivery report per record (`dr_cb`,
 *   served by `setPollInBackground`), a round done when each of its records has been reported;
 * - `raw-flush`: the same producer with `delivery.report.only.error=true` and one `flush()` per round, done
 *   when the flush returns (error reports counted, not traced to their round);
 * - `kafkajs`: Verdict's kafkajs producer (`sendBatch`), the reference;
 * - `verdict-librdkafka`: Verdict's own LibrdkafkaProducer (`producer.client: librdkafka`).
 *
 * The raw variants take Verdict's librdkafka settings (librdkafka-config.ts: murmur2_random, acks -1,
 * Nagle off, …), with each `linger.ms` asked for. The stream keeps a bounded number of records waiting for
 * their acknowledgement (by default 64 blocks, 8,192 records: `stream.maxBuffered`'s default; smaller windows
 * give smaller rounds, as a lighter load does), so a new block is sent when one is acknowledged. Per variant: records/s (wall, first send to last acknowledgement), process
 * CPU µs a record (every thread: librdkafka's included), main-thread CPU µs a record (bench/thread-cpu.ts),
 * and the mean round size. Runs are interleaved (variants in a rotated order each run); medians reported.
 * Run: `node dist/bench/micro/producer-acks.js [records] [runs] [linger ms list, default 0,1,5] [windows, default 8192]`.
 */
import { loadavg } from 'node:os';
import { silentLogger } from '../../core/log.js';
import { kafkaProducerSchema } from '../../config/kafka-options.js';
import type { OutboundRecord } from '../../pipeline/record.js';
import type { KafkaClientFactory, KafkaConnection, ProducerLike, ProducerSettings, RefusedRecord, SendBatchOptions, TopicRecords } from '../../streams/kafka/kafka-client.js';
import { KafkaSink } from '../../streams/kafka/kafka-sink.js';
import { kafkajsClientFactory } from '../../streams/kafka/kafkajs-client.js';
import { loadLibrdkafka, type LibrdkafkaConfig, type LibrdkafkaModule } from '../../streams/kafka/librdkafka-binding.js';
import { librdkafkaConfig } from '../../streams/kafka/librdkafka-config.js';
import { LibrdkafkaProducer } from '../../streams/kafka/librdkafka-producer.js';
import { startMockCluster, type KafkaCluster } from '../targets/kafka-cluster.js';
import { LibrdkafkaRounds, type RawRecord, type RoundAcks } from '../targets/librdkafka-rounds.js';
import { mainThreadCpuUs } from '../thread-cpu.js';
import { sampleOutputs, type SampleMessage } from './sample-outputs.js';

const RECORDS = Number(process.argv[2] ?? 50_000);
const RUNS = Number(process.argv[3] ?? 3);
const LINGERS = (process.argv[4] ?? '0,1,5').split(',').map(Number);
/** Records sent and not yet acknowledged, at most (the stream's `maxBuffered` default is 8,192): smaller windows make smaller rounds. */
const WINDOWS = (process.argv[5] ?? '8192').split(',').map(Number);
const PARTITIONS = 16;
const BLOCK = 128;
const WARMUP = 4_096;
const SAMPLE = 1_000;

type VariantName = 'raw-dr' | 'raw-flush' | 'kafkajs' | 'verdict-librdkafka';
interface Variant { readonly name: VariantName; readonly lingerMs: number | null; readonly window: number }

interface Measured { readonly recordsPerS: number; readonly processUs: number; readonly mainUs: number; readonly meanRound: number; readonly errors: number }

/** Counts rounds and records, and passes everything on. */
class Counting implements ProducerLike {
  rounds = 0;
  records = 0;
  constructor(readonly inner: ProducerLike) {}
  connect(): Promise<void> { return this.inner.connect(); }
  sendBatch(batch: readonly TopicRecords[], options?: SendBatchOptions): Promise<readonly RefusedRecord[]> {
    this.rounds++;
    for (const t of batch) this.records += t.records.length;
    return this.inner.sendBatch(batch, options);
  }
  disconnect(): Promise<void> { return this.inner.disconnect(); }
}

/** An empty view into a non-empty buffer (the binding writes a zero-length Buffer as null). */
const EMPTY = Buffer.from([0]).subarray(1);
const bytes = (v: Buffer | string): Buffer => { const b = typeof v === 'string' ? Buffer.from(v) : v; return b.length === 0 ? EMPTY : b; };

/** The native producer used directly (targets/librdkafka-rounds.ts) behind the sink's seam: one send a topic. */
class Raw implements ProducerLike {
  rounds: LibrdkafkaRounds | undefined;
  constructor(readonly module: LibrdkafkaModule, readonly config: LibrdkafkaConfig, readonly acks: RoundAcks) {}
  async connect(): Promise<void> { this.rounds = await LibrdkafkaRounds.connect(this.module, this.config, this.acks); }
  async sendBatch(batch: readonly TopicRecords[]): Promise<readonly RefusedRecord[]> {
    await Promise.all(batch.map((t) => this.rounds!.send(t.topic, t.records.map((r): RawRecord => ({
      key: r.key === null ? null : bytes(r.key), value: r.value === null ? null : bytes(r.value), partition: r.partition ?? null,
      headers: r.headers.map((h) => ({ [h.key]: bytes(h.value ?? EMPTY) })),
    })))));
    return [];
  }
  disconnect(): Promise<void> { return this.rounds!.disconnect(); }
}

async function measure(cluster: KafkaCluster, module: LibrdkafkaModule | null, variant: Variant, sample: readonly SampleMessage[], topic: string): Promise<Measured> {
  const connection: KafkaConnection = { brokers: [...cluster.brokers], clientId: `acks-${variant.name}`, logLevel: 'nothing' };
  const settings: ProducerSettings = kafkaProducerSchema.parse({
    client: variant.name === 'kafkajs' ? 'kafkajs' : 'librdkafka', ...(variant.lingerMs === null ? {} : { lingerMs: variant.lingerMs }),
  });
  const kafkajs = kafkajsClientFactory(connection, silentLogger);
  let raw: Raw | undefined;
  const make = (): ProducerLike => {
    switch (variant.name) {
      case 'kafkajs': return kafkajs.producer(settings);
      case 'verdict-librdkafka': return new LibrdkafkaProducer(connection, settings, { companion: kafkajs.producer(settings), logger: silentLogger });
      case 'raw-dr': return (raw = new Raw(module!, librdkafkaConfig(connection, settings), 'per-record'));
      case 'raw-flush': return (raw = new Raw(module!, librdkafkaConfig(connection, settings), 'flush'));
    }
  };
  const counting = new Counting(make());
  const factory: KafkaClientFactory = { ...kafkajs, producer: () => counting };
  const sink = new KafkaSink({ ...connection, producer: settings }, { factory });
  await sink.connect();
  const records: OutboundRecord[] = Array.from({ length: RECORDS + WARMUP }, (_, i) => ({ topic, ...sample[i % sample.length]! }));
  // Unmeasured: connections made, metadata fetched, JIT warm.
  await closedLoop(sink, records.slice(0, WARMUP), variant.window);
  counting.rounds = 0;
  counting.records = 0;
  const errors0 = raw?.rounds?.errors ?? 0;
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadCpuUs();
  const t0 = performance.now();
  await closedLoop(sink, records.slice(WARMUP), variant.window);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const main1 = mainThreadCpuUs();
  const rounds = counting.rounds;
  const errors = (raw?.rounds?.errors ?? 0) - errors0;
  await sink.close();
  return {
    recordsPerS: RECORDS / seconds,
    processUs: (cpu.user + cpu.system) / RECORDS,
    mainUs: main0 === null || main1 === null ? NaN : (main1 - main0) / RECORDS,
    meanRound: RECORDS / Math.max(1, rounds),
    errors,
  };
}

/** Blocks of 128 into the sink, with at most `window` records unacknowledged. */
async function closedLoop(sink: KafkaSink, records: readonly OutboundRecord[], window: number): Promise<void> {
  const maxBlocks = Math.max(1, Math.floor(window / BLOCK));
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < records.length) {
      const from = next;
      next += BLOCK;
      const refused = await sink.send(records.slice(from, from + BLOCK));
      if (refused.length > 0) throw new Error(`${refused.length} records refused`);
    }
  };
  await Promise.all(Array.from({ length: maxBlocks }, lane));
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;

async function main(): Promise<void> {
  const loaded = await loadLibrdkafka();
  const module = 'module' in loaded ? loaded.module : null;
  if (module === null) console.error(`librdkafka variants skipped: ${'missing' in loaded ? loaded.missing : ''}`);
  const variants: Variant[] = [];
  for (const window of WINDOWS) {
    variants.push({ name: 'kafkajs', lingerMs: null, window });
    if (module === null) continue;
    for (const lingerMs of LINGERS) {
      variants.push({ name: 'raw-dr', lingerMs, window }, { name: 'raw-flush', lingerMs, window }, { name: 'verdict-librdkafka', lingerMs, window });
    }
  }
  const { verdict: sample } = await sampleOutputs(SAMPLE);
  const cluster = await startMockCluster();
  const results = new Map<string, Measured[]>();
  const load = [loadavg()[0]!];
  try {
    for (let run = 0; run < RUNS; run++) {
      // Interleaved: each run starts at another variant, so no variant always runs first (or last).
      const order = variants.map((_, i) => variants[(i + run * Math.ceil(variants.length / RUNS)) % variants.length]!);
      for (const v of order) {
        const key = `${v.lingerMs === null ? v.name : `${v.name} linger ${v.lingerMs}`}${WINDOWS.length > 1 ? ` window ${v.window}` : ''}`;
        const topic = `acks-${run}-${v.name}-${v.lingerMs ?? 'x'}-${v.window}`;
        await cluster.createTopic(topic, PARTITIONS);
        const m = await measure(cluster, module, v, sample, topic);
        results.set(key, [...(results.get(key) ?? []), m]);
        console.error(`run ${run + 1}/${RUNS} ${key}: ${Math.round(m.recordsPerS)} records/s, ${m.processUs.toFixed(1)} µs process, ${m.mainUs.toFixed(1)} µs main thread, rounds of ${Math.round(m.meanRound)}`);
      }
      load.push(loadavg()[0]!);
    }
  } finally {
    await cluster.stop();
  }
  const one = (x: number, d = 1): number => +x.toFixed(d);
  const valueBytes = Math.round(sample.reduce((s, m) => s + m.value.length, 0) / sample.length);
  console.log(JSON.stringify({
    records: RECORDS, runs: RUNS, partitions: PARTITIONS, acks: -1, block: BLOCK, windows: WINDOWS,
    recordShape: { valueBytes, keyBytes: sample[0]?.key.length, headers: sample[0]?.headers.length },
    librdkafka: module?.librdkafkaVersion ?? null,
    loadAverage1m: load.map((l) => one(l, 2)),
    medians: Object.fromEntries([...results].map(([k, ms]) => [k, {
      recordsPerS: Math.round(median(ms.map((m) => m.recordsPerS))),
      processCpuUsPerRecord: one(median(ms.map((m) => m.processUs))),
      mainThreadCpuUsPerRecord: one(median(ms.map((m) => m.mainUs))),
      meanRoundRecords: Math.round(median(ms.map((m) => m.meanRound))),
      errorReports: ms.reduce((s, m) => s + m.errors, 0),
    }])),
  }, null, 2));
}

await main();
