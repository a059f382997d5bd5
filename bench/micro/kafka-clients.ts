/**
 * kafkajs against librdkafka on the same broker and the same records: CPU per record to produce (acks -1)
 * and to consume, for the passthrough baseline's records and for Verdict's decisions. kafkajs runs as
 * Verdict runs it (KafkaSink's coalesced sendBatch rounds; an eachBatch consumer); librdkafka runs as kcat,
 * whose process CPU (all its threads) is read by /usr/bin/time. This is the measurement behind "a leaner
 * client would lift the Kafka ceiling". Needs the mock broker (librdkafka-dev) and kcat, as the Kafka tests do.
 * Run: `node dist/bench/micro/kafka-clients.js [records]`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { KafkaSink } from '../../streams/kafka/kafka-sink.js';
import type { OutboundRecord } from '../../pipeline/record.js';
import { startMockCluster, type KafkaCluster } from '../targets/kafka-cluster.js';
import { sampleOutputs, type SampleMessage } from './sample-outputs.js';

const RECORDS = Number(process.argv[2] ?? 50_000);
const SAMPLE = 1_000;
// The mock broker keeps 5 MiB a partition, and keys are skewed: 16 partitions hold 50,000 decisions (≈ 30 MB).
const PARTITIONS = 16;

const cpuUs = (since: NodeJS.CpuUsage): number => { const c = process.cpuUsage(since); return c.user + c.system; };

async function kafkajsProduce(cluster: KafkaCluster, topic: string, sample: readonly SampleMessage[]): Promise<number> {
  const sink = new KafkaSink({ brokers: [...cluster.brokers], clientId: 'micro-kafkajs', logLevel: 'nothing' });
  await sink.connect();
  const records: OutboundRecord[] = Array.from({ length: RECORDS }, (_, i) => ({ topic, ...sample[i % sample.length]! }));
  const cpu0 = process.cpuUsage();
  const sends: Promise<unknown>[] = [];
  // In blocks of 128, as the stream emits blocks; the sink merges what arrives while rounds are out.
  for (let i = 0; i < records.length; i += 128) sends.push(sink.send(records.slice(i, i + 128)));
  await Promise.all(sends);
  const us = cpuUs(cpu0) / RECORDS;
  await sink.close();
  return us;
}

async function kafkajsConsume(cluster: KafkaCluster, topic: string): Promise<number> {
  const kafka = new Kafka({ clientId: 'micro-kafkajs', brokers: [...cluster.brokers], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `micro-${topic}`, ...cluster.timings, maxBytesPerPartition: 1_048_576 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  let cpu0: NodeJS.CpuUsage | undefined;
  const done = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kafkajs read ${seen} of ${RECORDS} records from ${topic} in 60 s`)), 60_000);
    void consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: PARTITIONS,
      eachBatch: async ({ batch }) => {
        cpu0 ??= process.cpuUsage();
        // What a consumer of records must at least touch: every key, value and header.
        for (const m of batch.messages) if (m.value !== null && m.key !== null && m.headers !== undefined) seen++;
        if (seen >= RECORDS && cpu0 !== undefined) { clearTimeout(timer); resolve(cpuUs(cpu0) / RECORDS); }
        await Promise.resolve();
      },
    });
  });
  const us = await done;
  await consumer.disconnect();
  return us;
}

function kcatProduce(cluster: KafkaCluster, topic: string, sample: readonly SampleMessage[], dir: string): number {
  const file = join(dir, `${topic}.txt`);
  const lines = Array.from({ length: RECORDS }, (_, i) => { const m = sample[i % sample.length]!; return `${m.key.toString()}\t${m.value.toString()}`; });
  writeFileSync(file, `${lines.join('\n')}\n`);
  // kcat sets the same headers on every record; the first record's are the same size as the others'.
  const headers = (sample[0]?.headers ?? []).flatMap((h) => ['-H', `${h.key}=${h.value?.toString('utf8') ?? ''}`]);
  const { cpuS } = timedCpu('kcat', ['-P', '-b', cluster.brokers.join(','), '-t', topic, '-K', '\t', ...headers, '-X', 'acks=all', '-l', file]);
  return (cpuS * 1e6) / RECORDS;
}

function kcatConsume(cluster: KafkaCluster, topic: string): { us: number; records: number } {
  const { cpuS, stdout } = timedCpu('kcat', ['-C', '-b', cluster.brokers.join(','), '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%k %h %s\n']);
  return { us: (cpuS * 1e6) / RECORDS, records: stdout.split('\n').length - 1 };
}

/** /usr/bin/time writes to stderr; the command's own output stays on stdout. */
function timedCpu(command: string, args: readonly string[]): { cpuS: number; stdout: string } {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-time-'));
  const timeFile = join(dir, 'time');
  try {
    const stdout = execFileSync('/usr/bin/time', ['-o', timeFile, '-f', '%U %S', command, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 30 });
    const [user, system] = execFileSync('cat', [timeFile], { encoding: 'utf8' }).trim().split(/\s+/).map(Number);
    return { cpuS: (user ?? NaN) + (system ?? NaN), stdout };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const shapes = await sampleOutputs(SAMPLE);
  const cluster = await startMockCluster();
  const dir = mkdtempSync(join(tmpdir(), 'verdict-clients-'));
  const results: Record<string, unknown> = {};
  try {
    for (const [name, sample] of Object.entries(shapes)) {
      const jsTopic = `clients-kafkajs-${name}`;
      const catTopic = `clients-kcat-${name}`;
      await cluster.createTopic(jsTopic, PARTITIONS);
      await cluster.createTopic(catTopic, PARTITIONS);
      const produce = { kafkajs: await kafkajsProduce(cluster, jsTopic, sample), kcat: kcatProduce(cluster, catTopic, sample, dir) };
      const consumedByKcat = kcatConsume(cluster, catTopic);
      const consume = { kafkajs: await kafkajsConsume(cluster, jsTopic), kcat: consumedByKcat.us };
      if (consumedByKcat.records !== RECORDS) throw new Error(`kcat read ${consumedByKcat.records} of ${RECORDS} records from ${catTopic}`);
      const round = (x: number): number => +x.toFixed(2);
      results[name] = {
        valueBytes: Math.round(sample.reduce((s, m) => s + m.value.length, 0) / sample.length),
        headers: sample[0]?.headers.length ?? 0,
        produceCpuUsPerRecord: { kafkajs: round(produce.kafkajs), librdkafka: round(produce.kcat) },
        consumeCpuUsPerRecord: { kafkajs: round(consume.kafkajs), librdkafka: round(consume.kcat) },
      };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await cluster.stop();
  }
  console.log(JSON.stringify({ records: RECORDS, partitions: PARTITIONS, acks: 'all', results }, null, 2));
}

await main();
