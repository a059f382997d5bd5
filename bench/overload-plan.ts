/**
 * Before an overload: will its backlog fit in the broker? Printed before the run and kept in the report,
 * so a run whose backlog the mock broker must delete is known as such before it starts.
 */
import type { EventPool } from './events.js';
import { busiestPartitionShare, predictBacklog, recordBytes, RETENTION_MARGIN, type BacklogPrediction } from './retention.js';

export interface OverloadFit {
  /** Mean bytes of one input record in a record batch. */
  readonly recordBytes: number;
  /** At the consumption rate measured in the levels; null when the broker's retention is unknown. */
  readonly prediction: BacklogPrediction | null;
  /** The same if the system under test consumed nothing during the load. */
  readonly worstCase: BacklogPrediction | null;
  readonly note: string;
  /** For the progress display. */
  readonly lines: readonly string[];
}

const MiB = 2 ** 20;
const pct = (x: number): string => `${Math.round(x * 100)}%`;
const n = (x: number): string => Math.round(x).toLocaleString('en-US');

export function predictOverload(o: {
  readonly rate: number;
  readonly durationS: number;
  readonly tickMs: number;
  readonly partitions: number;
  readonly pool: EventPool;
  readonly consumeRate: number;
  /** Where consumeRate comes from, for the reader. */
  readonly consumeSource: string;
  /** Null: the broker's retention is unknown (an external cluster) or unbounded (the embedded log). */
  readonly retentionBytesPerPartition: number | null;
}): OverloadFit {
  // The pool's ids are shorter than those of an overload's later events by a character or two: the mean is
  // low by under 1%.
  const events = o.pool.sequence('e').take(o.pool.size);
  const mean = events.reduce((sum, e) => sum + recordBytes(e), 0) / Math.max(1, events.length);
  const retention = o.retentionBytesPerPartition;
  if (retention === null) {
    const note = 'backlog not forecast: the broker\'s retention is unknown here (external cluster) or unbounded (embedded log)';
    return { recordBytes: mean, prediction: null, worstCase: null, note, lines: [note] };
  }
  const inputs = {
    rate: o.rate, durationS: o.durationS, tickMs: o.tickMs, partitions: o.partitions, recordBytes: mean,
    retentionBytesPerPartition: retention, shareFor: busiestPartitionShare(events.map((e) => e.key)),
  };
  const prediction = predictBacklog({ ...inputs, consumeRate: Math.min(o.consumeRate, o.rate) });
  const worstCase = predictBacklog({ ...inputs, consumeRate: 0 });
  const p = prediction;
  const share = p.backlogRecords === 0 ? 0 : p.busiestPartitionRecords / p.backlogRecords;
  const verdict = p.fits
    ? `fits (margin: at most ${pct(RETENTION_MARGIN)})`
    : `DOES NOT FIT: records will be deleted before they are read${p.partitionsNeeded === null ? '' : `; ${p.partitionsNeeded} partitions would fit (--overload-partitions ${p.partitionsNeeded})`}`;
  const lines = [
    `backlog forecast: ${n(o.rate)}/s offered, ${n(p.consumeRate)}/s consumed (${o.consumeSource}): ${n(p.backlogRecords)} records unread when the load stops`,
    `  busiest of ${o.partitions} partitions (${pct(share)} of the records): ${(p.busiestPartitionBytes / MiB).toFixed(2)} MiB of record batches, ${pct(p.fill)} of the mock broker's ${retention / MiB} MiB retention per partition: ${verdict}`,
    `  if the system consumed nothing during the load: ${pct(worstCase.fill)} of retention${worstCase.fits ? '' : worstCase.partitionsNeeded === null ? '' : ` (${worstCase.partitionsNeeded} partitions would fit)`}`,
  ];
  return { recordBytes: mean, prediction, worstCase, note: lines.join(' '), lines };
}
