/**
 * Reads given partitions of a topic from their start to given end offsets, over kafkajs: how a changelog
 * is read back on a restore (streams/kafka/kafka-changelog.ts).
 *
 * kafkajs has no manual assignment: a consumer always joins a group. So each read joins a group of its own
 * (a fresh id, never committed to) whose assigner hands its one member exactly the partitions asked for,
 * reads each from its start (`fromBeginning` in a group without commits), and leaves once every partition
 * reached its end offset.
 */
import { randomUUID } from 'node:crypto';
import { AssignerProtocol, type Kafka, type PartitionAssigner } from 'kafkajs';
import { StateRestoreError, TransportError } from '../../core/errors.js';
import { toTransportError } from './kafkajs-errors.js';

/** The assigner's protocol name: members of a read group all use it. */
const PROTOCOL = 'verdict-partition-read';

function assignerFor(topic: string, partitions: readonly number[]): PartitionAssigner {
  return () => ({
    name: PROTOCOL,
    version: 1,
    assign: ({ members }) => Promise.resolve(members.map((m, i) => ({
      memberId: m.memberId,
      // One member per read group; should another join, it gets nothing.
      memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: i === 0 ? { [topic]: [...partitions] } : {}, userData: Buffer.alloc(0) }),
    }))),
    protocol: ({ topics }) => ({ name: PROTOCOL, metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }) }),
  });
}

/**
 * Reads `topic`'s partitions listed in `ends` (partition → end offset, exclusive) from their start, each in
 * offset order. Partitions whose end is at or below their start need no read and should be left out.
 * Rejects with a retryable TransportError when the consumer fails, or StateRestoreError once `signal` aborts.
 */
export async function readPartitions(
  kafka: Kafka,
  clientId: string,
  topic: string,
  ends: ReadonlyMap<number, number>,
  onRecord: (partition: number, key: Buffer | null, value: Buffer | null) => void,
  signal: AbortSignal,
): Promise<void> {
  if (ends.size === 0) return;
  const partitions = [...ends.keys()];
  const consumer = kafka.consumer({
    groupId: `${clientId}.partition-read.${randomUUID()}`,
    partitionAssigners: [assignerFor(topic, partitions)],
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: 100,
    retry: { restartOnFailure: () => Promise.resolve(false) },
  });
  const remaining = new Set(partitions);
  let settle: ((err?: Error) => void) | undefined;
  const done = new Promise<void>((resolve, reject) => {
    settle = (err) => (err === undefined ? resolve() : reject(err));
  });
  const onAbort = (): void => settle?.(new StateRestoreError(`reading ${topic} given up`, { details: { topic, reason: 'aborted' } }));
  signal.addEventListener('abort', onAbort, { once: true });
  consumer.on(consumer.events.CRASH, ({ payload }) => settle?.(toTransportError(payload.error, `reading ${topic} failed`)));
  try {
    if (signal.aborted) throw new StateRestoreError(`reading ${topic} given up`, { details: { topic, reason: 'aborted' } });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: ({ batch }) => {
        const partition = batch.partition;
        const end = ends.get(partition);
        if (end === undefined || !remaining.has(partition)) return Promise.resolve();
        for (const m of batch.messages) {
          const offset = Number(m.offset);
          if (offset >= end) break;
          onRecord(partition, m.key ?? null, m.value ?? null);
        }
        const last = Number(batch.lastOffset());
        if (last + 1 >= end) {
          remaining.delete(partition);
          consumer.pause([{ topic, partitions: [partition] }]);
          if (remaining.size === 0) settle?.();
        }
        return Promise.resolve();
      },
    });
    await done;
  } catch (err) {
    throw err instanceof StateRestoreError || err instanceof TransportError ? err : toTransportError(err, `reading ${topic} failed`);
  } finally {
    signal.removeEventListener('abort', onAbort);
    await consumer.disconnect().catch(() => undefined);
  }
}
