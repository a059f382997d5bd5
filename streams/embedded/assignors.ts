/**
 * Partition assignment strategies for embedded consumer groups, after Kafka's `range` and `roundrobin`
 * assignors. Pure functions of the members (in join order) and the topics' partition counts, so a
 * rebalance is a diff between two results.
 */
import type { TopicPartition } from '../../pipeline/record.js';

export type AssignorName = 'range' | 'round-robin';

export interface MemberSubscription {
  readonly id: string;
  readonly topics: readonly string[];
}

/** Maps every member id to the partitions it should own. Members come in a stable order (join order). */
export type Assignor = (
  members: readonly MemberSubscription[],
  partitionCount: (topic: string) => number,
) => Map<string, TopicPartition[]>;

function emptyAssignment(members: readonly MemberSubscription[]): Map<string, TopicPartition[]> {
  return new Map(members.map((m) => [m.id, []]));
}

function subscribedTopics(members: readonly MemberSubscription[]): string[] {
  return [...new Set(members.flatMap((m) => m.topics))].sort();
}

/** Per topic, each subscriber gets a contiguous range; the first `partitions % members` get one extra. */
export const rangeAssignor: Assignor = (members, partitionCount) => {
  const result = emptyAssignment(members);
  for (const topic of subscribedTopics(members)) {
    const subscribers = members.filter((m) => m.topics.includes(topic));
    const partitions = partitionCount(topic);
    const share = Math.floor(partitions / subscribers.length);
    const extra = partitions % subscribers.length;
    let next = 0;
    subscribers.forEach((member, i) => {
      const owned = result.get(member.id) ?? [];
      const count = share + (i < extra ? 1 : 0);
      for (let p = next; p < next + count; p++) owned.push({ topic, partition: p });
      next += count;
    });
  }
  return result;
};

/** All partitions of all topics dealt in turn to the members, skipping members not subscribed to a topic. */
export const roundRobinAssignor: Assignor = (members, partitionCount) => {
  const result = emptyAssignment(members);
  let cursor = 0;
  for (const topic of subscribedTopics(members)) {
    const partitions = partitionCount(topic);
    for (let partition = 0; partition < partitions; partition++) {
      for (let tries = 0; tries < members.length; tries++) {
        const member = members[cursor % members.length];
        cursor++;
        if (member !== undefined && member.topics.includes(topic)) {
          result.get(member.id)?.push({ topic, partition });
          break;
        }
      }
    }
  }
  return result;
};

export const ASSIGNORS: Readonly<Record<AssignorName, Assignor>> = {
  range: rangeAssignor,
  'round-robin': roundRobinAssignor,
};
