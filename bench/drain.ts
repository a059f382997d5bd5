/**
 * When a drain stops waiting. After the load, the harness waits for the output of every event it sent;
 * it must not wait for outputs that can no longer come, and must say why it stopped. Pure, so the rule is
 * tested on made-up states.
 */

/**
 * What a Kafka target can tell about its unanswered events (see BenchTarget.logState). Embedded targets
 * cannot tell: their drain ends on progress and time alone.
 */
export interface LogState {
  /** Partitions whose log start offset has passed the consumer group's committed offset: the broker
   * deleted records there that the system under test had not committed. */
  readonly overtakenPartitions: number;
  /** Of the unanswered events asked about: deleted from the input topic (offset below its partition's log
   * start offset). */
  readonly deleted: number;
  /** Of the unanswered events asked about: never accepted by the broker (the load producer's send failed). */
  readonly neverAccepted: number;
  /** Output records deleted before the harness's reader got to them (gaps in the output offsets). */
  readonly outputsDeleted: number;
  /** The most records any one input partition held unread (high watermark − committed offset), if known:
   * the backlog the broker's per-partition retention must hold. */
  readonly busiestUnread?: number;
}

export type DrainEnd = 'caught-up' | 'unreachable' | 'stalled' | 'timeout';

export interface DrainProgress {
  readonly pending: number;
  readonly sinceLastOutputS: number;
  readonly elapsedS: number;
  /** The latest log state, if the target reports one. */
  readonly log: LogState | null;
}

export interface DrainLimits {
  readonly timeoutS: number;
  /** No output at all for this long: stop. Absent: wait the full timeout. */
  readonly idleS?: number;
}

export interface DrainStop {
  readonly end: DrainEnd;
  readonly reason: string;
}

/** Null: keep waiting. */
export function drainStop(p: DrainProgress, limits: DrainLimits): DrainStop | null {
  if (p.pending === 0) return { end: 'caught-up', reason: 'every event sent has its output' };
  const log = p.log;
  // Every unanswered event is gone from the broker, and the consumer has committed past the deleted
  // records, so it holds none of them in flight: nothing more can arrive.
  if (log !== null && log.deleted + log.neverAccepted >= p.pending && log.overtakenPartitions === 0) {
    return { end: 'unreachable', reason: `${unreachable(log)}: none of the ${p.pending} unanswered events can still arrive` };
  }
  if (limits.idleS !== undefined && p.sinceLastOutputS > limits.idleS) {
    return { end: 'stalled', reason: `no output for ${round(p.sinceLastOutputS)} s with ${p.pending} events unanswered${log === null ? '' : ` (${unreachable(log)})`}` };
  }
  if (p.elapsedS >= limits.timeoutS) {
    return { end: 'timeout', reason: `drain timeout of ${limits.timeoutS} s with ${p.pending} events unanswered${log === null ? '' : ` (${unreachable(log)})`}` };
  }
  return null;
}

function unreachable(log: LogState): string {
  const parts = [`${log.deleted} deleted by broker retention before being read`];
  if (log.neverAccepted > 0) parts.push(`${log.neverAccepted} never accepted by the broker`);
  if (log.outputsDeleted > 0) parts.push(`${log.outputsDeleted} outputs deleted before the harness read them`);
  return parts.join(', ');
}

const round = (x: number): number => Math.round(x * 10) / 10;
