/**
 * The coordinator of one embedded consumer group: who is in it and which partitions each member owns.
 * Every join and leave recomputes the assignment and tells only the members whose share changed: first
 * every revocation, then every new assignment, so no partition is ever owned by two members at once.
 */
import type { TopicPartition } from '../../pipeline/record.js';
import type { Assignor, MemberSubscription } from './assignors.js';

export interface GroupMember extends MemberSubscription {
  /** Called synchronously during a rebalance: implementations queue the change and return. */
  onRevoked(partitions: readonly TopicPartition[]): void;
  onAssigned(partitions: readonly TopicPartition[]): void;
}

const sameTp = (a: TopicPartition, b: TopicPartition): boolean => a.topic === b.topic && a.partition === b.partition;
const minus = (a: readonly TopicPartition[], b: readonly TopicPartition[]): TopicPartition[] =>
  a.filter((x) => !b.some((y) => sameTp(x, y)));

export class ConsumerGroup {
  private readonly members: GroupMember[] = [];
  private current = new Map<string, TopicPartition[]>();
  private generationId = 0;

  constructor(
    readonly groupId: string,
    private readonly assignor: Assignor,
    private readonly partitionCount: (topic: string) => number,
  ) {}

  /** Bumped on every rebalance, as Kafka's generation id is. */
  get generation(): number {
    return this.generationId;
  }

  get size(): number {
    return this.members.length;
  }

  assignment(memberId: string): readonly TopicPartition[] {
    return this.current.get(memberId) ?? [];
  }

  join(member: GroupMember): void {
    this.members.push(member);
    this.rebalance();
  }

  /** The leaving member is not called back: it gives up everything it owns on its own. */
  leave(member: GroupMember): void {
    const index = this.members.indexOf(member);
    if (index < 0) return;
    this.members.splice(index, 1);
    this.current.delete(member.id);
    this.rebalance();
  }

  private rebalance(): void {
    const next = this.assignor(this.members, this.partitionCount);
    const changes = this.members.map((member) => {
      const before = this.current.get(member.id) ?? [];
      const after = next.get(member.id) ?? [];
      return { member, revoked: minus(before, after), assigned: minus(after, before) };
    });
    this.current = next;
    this.generationId++;
    for (const { member, revoked } of changes) if (revoked.length > 0) member.onRevoked(revoked);
    for (const { member, assigned } of changes) if (assigned.length > 0) member.onAssigned(assigned);
  }
}
