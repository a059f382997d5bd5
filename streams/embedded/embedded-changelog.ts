/**
 * The embedded log's changelog (streams/types.ts `ChangelogStore`): a compacted topic of the same log, with
 * as many partitions as the input, holding about one record per key (partition-log.ts compacts).
 */
import { ConfigError, StateRestoreError } from '../../core/errors.js';
import type { ChangelogStore } from '../types.js';
import type { InboundRecord } from '../../pipeline/record.js';

/** What the changelog needs of its embedded log (kept narrow: the log makes one of these for itself). */
export interface ChangelogLog {
  partitionCount(topic: string): number | undefined;
  createTopic(name: string, partitions: number, options?: { maxRecordsPerPartition?: number; compacted?: boolean }): void;
  endOffsets(topic: string): number[];
  startOffsets(topic: string): number[];
  read(topic: string, partition: number, fromOffset: number, max?: number): InboundRecord[];
}

/** Records read between checks of the abort signal (and yields to the event loop) during a restore. */
const READ_CHUNK = 10_000;

export class EmbeddedChangelog implements ChangelogStore {
  readonly #log: ChangelogLog;

  constructor(log: ChangelogLog) {
    this.#log = log;
  }

  prepare(topic: string, inputTopic: string): Promise<void> {
    const partitions = this.#log.partitionCount(inputTopic);
    if (partitions === undefined) return Promise.reject(new ConfigError(`input topic ${inputTopic} does not exist`, { details: { topic: inputTopic } }));
    const existing = this.#log.partitionCount(topic);
    if (existing !== undefined && existing !== partitions) {
      return Promise.reject(new ConfigError(`changelog topic ${topic} has ${existing} partitions, the input topic ${inputTopic} ${partitions}: they must match`, {
        details: { topic, partitions: existing, inputPartitions: partitions },
      }));
    }
    this.#log.createTopic(topic, partitions, { compacted: true });
    return Promise.resolve();
  }

  async read(topic: string, partitions: readonly number[], onRecord: (partition: number, key: Buffer | null, value: Buffer | null) => void, signal: AbortSignal): Promise<void> {
    const ends = this.#log.endOffsets(topic);
    const starts = this.#log.startOffsets(topic);
    for (const partition of partitions) {
      const end = ends[partition] ?? 0;
      for (let from = starts[partition] ?? 0; from < end;) {
        if (signal.aborted) throw new StateRestoreError('changelog restore given up', { details: { topic, partition, reason: 'aborted' } });
        const records = this.#log.read(topic, partition, from, Math.min(READ_CHUNK, end - from));
        if (records.length === 0) break;
        for (const r of records) onRecord(partition, r.key, r.value);
        from = records[records.length - 1]!.offset + 1;
        // A large log is read in chunks, so a restore never holds the event loop for long.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }
}
