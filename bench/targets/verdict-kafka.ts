/**
 * Verdict on Kafka, as the daemon runs it: the engine's stream between a KafkaSource (a consumer group
 * member, kafkajs) and a KafkaSink, on topics of the bench's own. The sink produces with the client the
 * target names (`kafka.producer.client`: kafkajs for verdict-kafka, librdkafka for
 * verdict-kafka-librdkafka), every other producer setting at its default.
 */
import type { Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import { Engine } from '../../runtime/engine.js';
import { KafkaSink } from '../../streams/kafka/kafka-sink.js';
import { KafkaSource } from '../../streams/kafka/kafka-source.js';
import { kafkaProducerSchema } from '../../config/kafka-options.js';
import { loadLibrdkafka } from '../../streams/kafka/librdkafka-binding.js';
import type { KafkaSutConfig, RunningSut } from './kafka-sut.js';
import { loadBenchPipeline } from './pipeline.js';
import { TargetUnavailableError } from './target.js';
import { withoutState } from './without-state.js';

/** `metrics`: where the engine, the stream and the source count (the child serves it); default their own. */
/** The consumer's fetch size per partition: one batch holds at most this many bytes of records. */
export const VERDICT_KAFKA_MAX_BYTES_PER_PARTITION = 1_048_576;

export async function startVerdictKafka(config: KafkaSutConfig, logger: Logger, metrics?: Metrics): Promise<RunningSut> {
  let librdkafka: string | null = null;
  if (config.producerClient === 'librdkafka') {
    // `client: librdkafka` would refuse to connect (CONFIG_INVALID); said here first, so the harness skips the target.
    const loaded = await loadLibrdkafka();
    if ('missing' in loaded) throw new TargetUnavailableError(`the librdkafka producer is unavailable: ${loaded.missing}`);
    librdkafka = loaded.module.librdkafkaVersion;
  }
  const loaded = await loadBenchPipeline(config.pipelinePath, config.topics);
  const { baseDir } = loaded;
  const file = config.withoutState === true ? withoutState(loaded.file) : loaded.file;
  const engine = await Engine.create(file, { baseDir, logger, ...(metrics === undefined ? {} : { metrics }) });
  const connection = { brokers: config.brokers, clientId: config.clientId, logLevel: 'nothing' as const, logger };
  const source = new KafkaSource({
    ...connection,
    groupId: config.groupId,
    topics: [config.topics.input],
    fromBeginning: true,
    ...config.timings,
    maxBytesPerPartition: VERDICT_KAFKA_MAX_BYTES_PER_PARTITION,
    partitionsConsumedConcurrently: config.partitionsConsumedConcurrently,
  }, metrics === undefined ? {} : { metrics });
  const sink = new KafkaSink({ ...connection, producer: { client: config.producerClient } });
  await sink.connect();
  await engine.prepareStream();
  const stream = engine.stream(source, sink);
  const p = engine.pipeline;
  return {
    settings: {
      workers: p.placement.workers,
      blocks: p.placement.blocks,
      inference: p.placement.inference,
      intraOpThreads: p.placement.intraOpThreads,
      batching: Object.fromEntries(p.steps.map((s) => [s.id, s.batching])),
      join: p.join,
      consumer: 'kafkajs',
      producer: librdkafka === null ? config.producerClient
        : `librdkafka ${librdkafka} (kafka.producer.client: librdkafka, linger.ms ${kafkaProducerSchema.parse({}).lingerMs}, a delivery report per record)`,
      acks: -1,
      partitionsConsumedConcurrently: config.partitionsConsumedConcurrently,
      state: p.state === null ? null : p.state.aggregates.map((a) => a.name),
    },
    workerMetrics: () => engine.workerMetrics(),
    stop: async () => {
      await stream.drain(5_000);
      await source.close();
      await sink.close();
      await engine.close();
    },
  };
}
