/**
 * The crash journal's contents and what a start-up concludes from them (pure: no file, no clock). The file
 * itself, its write-ahead marks and its lock are crash-journal.ts's.
 *
 * A run writes, ahead of processing, the offset ranges it has in flight per partition (`run.inflight`) and
 * marks itself `clean` when it stops under control. The next start reads it: an unclean run is a crash, and
 * its ranges join a short history of consecutive crashes (a clean run empties it). A partition whose ranges
 * in the last N crashes (N = `crashesBeforeIsolation`) all overlap has a suspect range: their intersection,
 * which held whatever was being processed at every one of those crashes. Suspects stay in the journal until
 * the partition's committed offset passes them; one ends at its poison record once isolation found it
 * (`afterIsolation`), since the ranges are written ahead and reach past what was really in flight.
 *
 * Records of a suspect range are also produced one per round, the run naming the record it is producing
 * (`run.producing`) ahead of each. A run that crashed while producing one record alone names it: the crash
 * is explained, not counted towards a new suspect range, and the record becomes an output poison of its
 * range (`outputPoison`), which the next run dead-letters without producing its output.
 */
import { z } from 'zod';
import type { TopicPartition } from '../../pipeline/record.js';

/** Offsets `from`..`to` (both included) of one partition. */
export interface OffsetRange extends TopicPartition {
  readonly from: number;
  readonly to: number;
}

/** A range in flight in `crashes` consecutive crashes: processed in isolation before anything else sees it. */
export interface SuspectRange extends OffsetRange {
  readonly crashes: number;
  /** Epoch ms of the start-up that found it. */
  readonly foundAt: number;
  /** Records of it processed in isolation, and of those dead-lettered as poison, over every run (absent: none yet). */
  readonly isolated?: number | undefined;
  readonly poison?: number | undefined;
  /** Offsets whose output crashed the process while produced alone (absent: none): dead-lettered, never produced. */
  readonly outputPoison?: readonly number[] | undefined;
}

/** One record of a partition. */
export interface OffsetOf extends TopicPartition {
  readonly offset: number;
}

/** What a run had in flight, as its last journal write said. */
interface RunInFlight {
  readonly pid: number;
  /** Epoch ms: when the run started. */
  readonly startedAt: number;
  /** The model steps it was running (`step=name@version`). */
  readonly models: readonly string[];
  readonly inflight: readonly OffsetRange[];
}

/** A run that crashed. */
export interface CrashEntry extends RunInFlight {
  /** Epoch ms: when the next start found it crashed. */
  readonly detectedAt: number;
}

/** The run writing the journal now (or the last one, as the next start reads it). */
export interface RunEntry extends RunInFlight {
  /** True once the run stopped under control (drained, forced stop, failed): its end was no crash. */
  readonly clean: boolean;
  /** The record of a suspect range whose output alone is being produced (absent: none). */
  readonly producing?: OffsetOf | undefined;
}

export interface JournalContent {
  readonly version: 1;
  readonly pipeline: string;
  readonly run: RunEntry;
  /** Consecutive crashes, oldest first, at most HISTORY. */
  readonly crashes: readonly CrashEntry[];
  /** At most MAX_SUSPECTS, oldest first. */
  readonly suspects: readonly SuspectRange[];
}

/** Crashes kept in the history (at least `crashesBeforeIsolation`, which is at most 16). */
export const HISTORY = 16;
/** Suspect ranges kept; the oldest go first (a partition long since moved to another daemon). */
export const MAX_SUSPECTS = 64;

const offset = z.number().int().nonnegative();
const range = z.object({ topic: z.string(), partition: z.number().int().nonnegative(), from: offset, to: offset });
const models = z.array(z.string());
export const journalSchema = z.object({
  version: z.literal(1),
  pipeline: z.string(),
  run: z.object({
    pid: z.number().int(), startedAt: z.number(), clean: z.boolean(), models, inflight: z.array(range),
    producing: z.object({ topic: z.string(), partition: z.number().int().nonnegative(), offset }).optional(),
  }),
  crashes: z.array(z.object({ pid: z.number().int(), startedAt: z.number(), detectedAt: z.number(), models, inflight: z.array(range) })),
  suspects: z.array(range.extend({
    crashes: z.number().int().positive(), foundAt: z.number(), isolated: offset.optional(), poison: offset.optional(), outputPoison: z.array(offset).optional(),
  })),
});

const tpKey = (tp: TopicPartition): string => `${tp.topic}\u0000${tp.partition}`;

/**
 * Per partition present in every one of `crashes`, the intersection of its ranges, when not empty. A
 * partition with several ranges in one crash (it cannot have: one range per partition) would use its first.
 */
export function intersectRanges(crashes: readonly CrashEntry[]): OffsetRange[] {
  const [first, ...rest] = crashes;
  if (first === undefined) return [];
  const result: OffsetRange[] = [];
  for (const r of first.inflight) {
    let from = r.from;
    let to = r.to;
    for (const crash of rest) {
      const other = crash.inflight.find((o) => tpKey(o) === tpKey(r));
      if (other === undefined) { to = -1; break; }
      from = Math.max(from, other.from);
      to = Math.min(to, other.to);
    }
    if (from <= to) result.push({ topic: r.topic, partition: r.partition, from, to });
  }
  return result;
}

/** What a start-up makes of the journal it found. */
export interface StartUp {
  /** The journal as this run starts it: a fresh unclean run, the updated history and suspects. */
  readonly content: JournalContent;
  /** The previous run's crash, if it crashed. */
  readonly crash: CrashEntry | undefined;
  /** The record the previous run crashed producing alone (an output poison now), if it did. */
  readonly outputPoison: OffsetOf | undefined;
  /** Consecutive crashes before this run (0 after a clean stop or with no journal). */
  readonly consecutive: number;
  /** Suspect ranges found now (also in `content.suspects`). */
  readonly found: readonly SuspectRange[];
}

/**
 * The start of a run. `previous`: the journal read (undefined: none, or unreadable). `threshold`: crashes in a
 * row before a common range becomes suspect. The crashes that produced suspects are consumed: the next
 * suspect needs `threshold` new crashes.
 */
export function startRun(previous: JournalContent | undefined, options: { pipeline: string; threshold: number; pid: number; now: number }): StartUp {
  const { pipeline, threshold, pid, now } = options;
  let crashes: CrashEntry[] = [...(previous?.crashes ?? [])];
  let crash: CrashEntry | undefined;
  let outputPoison: OffsetOf | undefined;
  let suspects = [...(previous?.suspects ?? [])];
  if (previous === undefined || previous.run.clean) crashes = [];
  else {
    const { run } = previous;
    crash = { pid: run.pid, startedAt: run.startedAt, detectedAt: now, models: run.models, inflight: run.inflight };
    // A crash while one record's output was produced alone is explained by that record: it is not counted
    // towards a new suspect range (its in-flight ranges held whatever else happened to be in flight).
    if (run.producing === undefined) crashes = [...crashes, crash].slice(-HISTORY);
    else {
      outputPoison = run.producing;
      suspects = withOutputPoison(suspects, run.producing, now);
    }
  }
  const consecutive = crashes.length + (outputPoison === undefined ? 0 : 1);
  const found: SuspectRange[] = outputPoison === undefined && crashes.length >= threshold
    ? intersectRanges(crashes.slice(-threshold)).map((r) => ({ ...r, crashes: threshold, foundAt: now }))
    : [];
  if (found.length > 0) crashes = [];
  suspects = [...suspects, ...found].slice(-MAX_SUSPECTS);
  return {
    content: { version: 1, pipeline, run: { pid, startedAt: now, clean: false, models: [], inflight: [] }, crashes, suspects },
    crash, outputPoison, consecutive, found,
  };
}

/**
 * `suspects` with `record` an output poison of the range holding it, counted as a poison; the range ends
 * there when it is the first poison found in it (as after isolation: `afterIsolation`). A record produced alone is always of a suspect range; should
 * none hold it (a journal edited by hand), it gets a range of its own.
 */
export function withOutputPoison(suspects: readonly SuspectRange[], record: OffsetOf, now: number): SuspectRange[] {
  const at = suspects.findIndex((s) => tpKey(s) === tpKey(record) && record.offset >= s.from && record.offset <= s.to);
  const s: SuspectRange = suspects[at] ?? { topic: record.topic, partition: record.partition, from: record.offset, to: record.offset, crashes: 1, foundAt: now };
  const known = s.outputPoison ?? [];
  if (known.includes(record.offset)) return [...suspects];
  // The first poison found ends the range (written ahead, it reached past the crashes); once one has, its
  // end is that poison's, at or past this one (records are produced in offset order).
  const poison = s.poison ?? 0;
  const next: SuspectRange = { ...s, to: poison === 0 ? record.offset : s.to, poison: poison + 1, outputPoison: [...known, record.offset] };
  return at < 0 ? [...suspects, next] : suspects.map((x, i) => (i === at ? next : x));
}

/** The suspects whose range the committed offsets have passed (their records are done), and those left. */
export function clearCommitted(suspects: readonly SuspectRange[], committed: readonly (TopicPartition & { readonly offset: number })[]): { cleared: SuspectRange[]; left: SuspectRange[] } {
  const next = new Map(committed.map((c) => [tpKey(c), c.offset]));
  const cleared: SuspectRange[] = [];
  const left: SuspectRange[] = [];
  for (const s of suspects) ((next.get(tpKey(s)) ?? -1) > s.to ? cleared : left).push(s);
  return { cleared, left };
}

/**
 * A suspect after `isolated` of its records ran in isolation, `poison` (offsets) of them dead-lettered: the
 * counts added, and its end moved down to the highest poison offset. The range is written ahead of processing
 * (up to 8 blocks past the last record handed), so it reaches past what the crashes can have had in flight,
 * often past the partition's end; the poison found is what crashed them, and a record after it runs
 * normally (should another one crash the process, N more crashes isolate it: bounded).
 */
export function afterIsolation(s: SuspectRange, isolated: number, poison: readonly number[]): SuspectRange {
  const inRange = poison.filter((o) => o >= s.from && o <= s.to);
  const to = inRange.length === 0 ? s.to : Math.max(...inRange);
  return { ...s, to, isolated: (s.isolated ?? 0) + isolated, poison: (s.poison ?? 0) + poison.length };
}
