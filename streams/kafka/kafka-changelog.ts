/**
 * A Kafka changelog topic (streams/types.ts `ChangelogStore`): created compacted with the input topic's
 * partition count when absent, and read back partition by partition on a restore.
 *
 * Compaction keeps each key's latest record, so the topic stays about one record per key held, however long
 * the daemon runs. (The test broker, librdkafka's mock cluster, neither compacts nor keeps more than about
 * 5 MiB per partition: tests size their runs to fit.)
 */
import { ConfigError } from '../../core/errors.js';
import type { ChangelogStore } from '../types.js';
import type { AdminLike, KafkaClientFactory, PartitionReaderLike } from './kafka-client.js';

/** The topic configs a changelog is created with: compacted, as Kafka Streams creates its changelogs. */
export const CHANGELOG_TOPIC_CONFIGS: Readonly<Record<string, string>> = { 'cleanup.policy': 'compact' };

export class KafkaChangelog implements ChangelogStore {
  readonly #factory: KafkaClientFactory;
  #admin: AdminLike | undefined;
  /** One reader per changelog topic, kept across restores (it joins its group once). */
  readonly #readers = new Map<string, PartitionReaderLike>();

  constructor(factory: KafkaClientFactory) {
    this.#factory = factory;
  }

  async prepare(topic: string, inputTopic: string): Promise<void> {
    const admin = this.#adminClient();
    const partitions = await admin.partitionCount(inputTopic);
    if (partitions === null) throw new ConfigError(`input topic ${inputTopic} does not exist`, { details: { topic: inputTopic } });
    const existing = await admin.partitionCount(topic);
    if (existing === null) await admin.createTopic(topic, partitions, CHANGELOG_TOPIC_CONFIGS);
    else if (existing !== partitions) {
      throw new ConfigError(`changelog topic ${topic} has ${existing} partitions, the input topic ${inputTopic} ${partitions}: they must match`, {
        details: { topic, partitions: existing, inputPartitions: partitions },
      });
    }
    // Its group joined while the stream's own consumer joins, so the first restore need not wait for it.
    this.#reader(topic).warm();
  }

  async read(topic: string, partitions: readonly number[], onRecord: (partition: number, key: Buffer | null, value: Buffer | null) => void, signal: AbortSignal): Promise<void> {
    const wanted = new Set(partitions);
    const ranges = new Map<number, { start: number; end: number }>();
    for (const { partition, low, high } of await this.#adminClient().topicOffsets(topic)) {
      // An empty partition (nothing written, or everything deleted) needs no read at all.
      if (wanted.has(partition) && high > low) ranges.set(partition, { start: low, end: high });
    }
    if (ranges.size === 0) return;
    await this.#reader(topic).read(ranges, onRecord, signal);
  }

  /** Disconnects the admin client and the readers, if any were made. */
  async close(): Promise<void> {
    const admin = this.#admin;
    this.#admin = undefined;
    const readers = [...this.#readers.values()];
    this.#readers.clear();
    await Promise.all(readers.map((r) => r.close()));
    await admin?.disconnect();
  }

  #reader(topic: string): PartitionReaderLike {
    let reader = this.#readers.get(topic);
    if (reader === undefined) {
      reader = this.#factory.partitionReader(topic);
      this.#readers.set(topic, reader);
    }
    return reader;
  }

  #adminClient(): AdminLike {
    this.#admin ??= this.#factory.admin();
    return this.#admin;
  }
}
