/**
 * The topics a Kafka target makes before its system under test starts: input, output and dead letters of
 * its own (`bench-<run>-<target>-…`), and, for Verdict on a pipeline that keeps per-key state, the state's
 * changelog, with the input's partition count. The daemon would create the changelog itself (compacted,
 * streams/kafka/kafka-changelog.ts), but the mock broker refuses kafkajs's CreateTopics (mock-kafka/
 * mock-broker.ts), and a stream whose changelog cannot be created retries its restore for ever.
 */
import type { PipelineFile } from '../../config/pipeline-schema.js';
import { changelogTopicName } from '../../runtime/keyed-state.js';
import { CHANGELOG_TOPIC_CONFIGS } from '../../streams/kafka/kafka-changelog.js';
import type { KafkaCluster } from './kafka-cluster.js';
import type { KafkaSutKind } from './kafka-sut.js';
import type { BenchTopics } from './pipeline.js';

export interface KafkaTargetTopics {
  readonly topics: BenchTopics;
  /** The system under test's consumer group. */
  readonly groupId: string;
  /** The state's changelog topic, when the system under test keeps state; else null. */
  readonly changelog: string | null;
}

export interface KafkaTopicsSpec {
  /** `bench-<run id>-<target name>`: every name starts with it. */
  readonly prefix: string;
  readonly partitions: number;
  readonly kind: KafkaSutKind;
  /** The pipeline the system under test runs, as it runs it (after `withoutState` for a `-no-state` target). */
  readonly pipeline: Pick<PipelineFile, 'pipeline' | 'state'>;
}

/** The names a target's topics get (nothing is created). */
export function kafkaTargetTopics(spec: KafkaTopicsSpec): KafkaTargetTopics {
  const { prefix, kind, pipeline } = spec;
  const groupId = `${prefix}-sut`;
  // Only Verdict's stream keeps its state in a changelog (the naive baseline keeps it in memory).
  const state = kind === 'verdict' ? pipeline.state : undefined;
  return {
    topics: { input: `${prefix}-in`, output: `${prefix}-out`, deadLetter: `${prefix}-dlq` },
    groupId,
    // Named as the daemon names it (runtime/keyed-state.ts keyedStateFor), under the group the child joins.
    changelog: state === undefined ? null : changelogTopicName(pipeline.pipeline, state.changelogTopic, groupId),
  };
}

/** Makes the topics on the cluster: the changelog compacted where the cluster can (not the mock). */
export async function createKafkaTargetTopics(cluster: Pick<KafkaCluster, 'createTopic'>, spec: KafkaTopicsSpec): Promise<KafkaTargetTopics> {
  const made = kafkaTargetTopics(spec);
  const { topics, changelog } = made;
  await cluster.createTopic(topics.input, spec.partitions);
  await cluster.createTopic(topics.output, spec.partitions);
  await cluster.createTopic(topics.deadLetter, 1);
  if (changelog !== null) await cluster.createTopic(changelog, spec.partitions, CHANGELOG_TOPIC_CONFIGS);
  return made;
}
