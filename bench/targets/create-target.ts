/** Makes a target by name, with everything it needs from the run's options. */
import type { Logger } from '../../core/log.js';
import { FusedEmbeddedTarget } from './fused-embedded.js';
import { externalCluster, startMockCluster, type KafkaCluster } from './kafka-cluster.js';
import { KafkaTarget } from './kafka-target.js';
import type { BenchTarget, TargetName } from './target.js';
import { VerdictEmbeddedTarget, type ShadowSpec } from './verdict-embedded.js';

export interface TargetContext {
  readonly pipelinePath: string;
  readonly partitions: number;
  /** Records kept per partition of an embedded log. */
  readonly embeddedRetention: number;
  /** An existing cluster; absent: each Kafka target starts the mock broker. */
  readonly brokers?: readonly string[];
  readonly runId: string;
  readonly logger: Logger;
  readonly logLevel: string;
  /** The shadow `verdict-embedded-shadow` adds to one step; default: the first step, shadowed by its own model id. */
  readonly shadow?: ShadowSpec;
}

export function createTarget(name: TargetName, ctx: TargetContext): BenchTarget {
  const embedded = { pipelinePath: ctx.pipelinePath, partitions: ctx.partitions, retention: ctx.embeddedRetention, logger: ctx.logger };
  const brokers = ctx.brokers;
  const cluster = (): Promise<KafkaCluster> => (brokers === undefined ? startMockCluster() : Promise.resolve(externalCluster(brokers)));
  const kafka = { cluster, partitions: ctx.partitions, pipelinePath: ctx.pipelinePath, runId: ctx.runId, logger: ctx.logger, logLevel: ctx.logLevel };
  switch (name) {
    case 'verdict-embedded': return new VerdictEmbeddedTarget(embedded);
    case 'verdict-embedded-shadow': return new VerdictEmbeddedTarget({ ...embedded, shadow: ctx.shadow ?? null });
    case 'verdict-embedded-no-state': return new VerdictEmbeddedTarget({ ...embedded, withoutState: true });
    case 'fused': return new FusedEmbeddedTarget(embedded);
    case 'verdict-kafka':
      return new KafkaTarget({
        ...kafka, name, kind: 'verdict', producerClient: 'kafkajs',
        description: 'Verdict: Engine.stream over KafkaSource/KafkaSink (kafkajs consumer and producer), blocks in its worker thread (runtime.mode blocks)',
      });
    case 'verdict-kafka-librdkafka':
      return new KafkaTarget({
        ...kafka, name, kind: 'verdict', producerClient: 'librdkafka',
        description: 'Verdict: verdict-kafka with kafka.producer.client librdkafka (kafkajs consumer, librdkafka native producer)',
      });
    case 'verdict-kafka-no-state':
      return new KafkaTarget({
        ...kafka, name, kind: 'verdict', producerClient: 'kafkajs', withoutState: true,
        description: 'Verdict: verdict-kafka with the pipeline without its per-key state (state features read event fields)',
      });
    case 'passthrough':
      return new KafkaTarget({
        ...kafka, name, kind: 'passthrough', producerClient: 'kafkajs',
        description: 'Baseline: kafkajs eachBatch → kafkajs sendBatch of the same records, no models (the I/O ceiling)',
      });
    case 'passthrough-librdkafka':
      return new KafkaTarget({
        ...kafka, name, kind: 'passthrough', producerClient: 'librdkafka',
        description: 'Baseline: kafkajs eachBatch → librdkafka native Producer (Verdict\'s settings, a delivery report per record) of the same records, no models',
      });
    case 'naive':
      return new KafkaTarget({
        ...kafka, name, kind: 'naive', producerClient: 'kafkajs',
        description: 'Baseline: kafkajs eachMessage, models one row at a time on the main thread, send per decision',
      });
  }
}
