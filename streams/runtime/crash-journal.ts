/**
 * The crash journal: a small local file that says, at any moment, which offsets of each partition are being
 * processed or produced, so that the next start knows what was in flight if this process dies (README "When
 * the process itself crashes"; what a start concludes is crash-history.ts's).
 *
 * Written ahead, cheaply. When a block is handed to processing and its offsets are not inside the range
 * journaled for its partition, the journal is rewritten first, with that partition's range running from its
 * first offset still in flight to the block's last offset plus a margin (`margin`, records), so the next
 * blocks usually fit without a write. A block is in flight from `handing` until `finished`, which the crash
 * guard calls once the block's outputs are written (acknowledged by the sink), not when it is processed: a
 * crash while producing them is inside the range too. Every partition's range is refreshed in the same
 * write (its start moves up to its first block still in flight, or past its last block when none is; a
 * range wholly done drops out). So the journaled ranges always hold every record being processed or
 * produced, and a write costs one small file per `margin` records of a partition, never one per event.
 *
 * `producing` names, ahead, the one record of a suspect range whose output is being produced alone: a
 * crash then is that record's (crash-history.ts). One write a record, on that rare path only.
 *
 * Atomic: the JSON is written to a temporary file and renamed over the journal. Not fsynced: the journal is
 * for process crashes, and the kernel keeps a written page when a process dies; a machine crash loses the
 * pod's emptyDir anyway.
 *
 * One process per journal file: a `.lock` file holds the writer's pid. A second live daemon with the same
 * group and pipeline in the same directory takes the next slot (`…-1.json`, up to 8); a lock whose pid is
 * dead, or is this process's own (a container restarted with the same pid), is taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { asVerdictError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { InboundRecord, TopicPartition } from '../../pipeline/record.js';
import {
  afterIsolation, clearCommitted, journalSchema, startRun, type JournalContent, type OffsetOf, type OffsetRange, type StartUp, type SuspectRange,
} from './crash-history.js';

const SLOTS = 8;

export interface CrashJournalOptions {
  /** The directory (created if absent). */
  readonly dir: string;
  /** The consumer group and the pipeline: together they name the file. */
  readonly groupId: string;
  readonly pipeline: string;
  /** Consecutive crashes before a common range is suspect. */
  readonly threshold: number;
  /** Records past a block's last offset that a write covers ahead. */
  readonly margin: number;
  readonly logger: Logger;
  /** Epoch ms, for the journal's timestamps (not timing). */
  readonly wallClock: () => number;
  /** This process's id. */
  readonly pid: number;
}

/** What is running, for the journal: the model bindings' generation and, when written, each step's version. */
export interface Running {
  readonly generation: number;
  describe(): readonly string[];
}

/** One partition's blocks in processing (first and last offsets, in hand-over order) and its journaled range. */
interface PartitionMarks {
  readonly tp: TopicPartition;
  readonly blocks: Array<readonly [first: number, last: number]>;
  /** The last offset handed to processing: with no block in processing, everything up to it is done. */
  lastHanded: number;
  journaled: { from: number; to: number } | undefined;
}

const tpKey = (tp: TopicPartition): string => `${tp.topic}\u0000${tp.partition}`;
/** The same suspect range, whatever its end became since (isolation moves it down). */
export const sameSuspect = (a: SuspectRange, b: SuspectRange): boolean =>
  a.topic === b.topic && a.partition === b.partition && a.from === b.from && a.foundAt === b.foundAt;
const safe = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '_');

export class CrashJournal {
  /** The journal file. */
  readonly path: string;
  /** What the start found: the previous run's crash, the consecutive count, new suspect ranges. */
  readonly startUp: StartUp;
  readonly #lock: string;
  readonly #options: CrashJournalOptions;
  #content: JournalContent;
  readonly #marks = new Map<string, PartitionMarks>();
  #generation = -1;
  #writeFailed = false;
  #closed = false;

  private constructor(path: string, lock: string, startUp: StartUp, options: CrashJournalOptions) {
    this.path = path;
    this.#lock = lock;
    this.startUp = startUp;
    this.#content = startUp.content;
    this.#options = options;
  }

  /**
   * Takes a slot in `dir`, reads what the previous run left there, and starts this run's record (written
   * now). Throws (a plain I/O error) when the directory cannot be created or written; returns undefined
   * when every slot is held by a live process.
   */
  static open(options: CrashJournalOptions): CrashJournal | undefined {
    mkdirSync(options.dir, { recursive: true });
    const base = `${safe(options.groupId)}.${safe(options.pipeline)}`;
    for (let slot = 0; slot < SLOTS; slot++) {
      const path = join(options.dir, `${base}${slot === 0 ? '' : `-${slot}`}.json`);
      const lock = `${path}.lock`;
      if (!takeLock(lock, options.pid)) continue;
      const previous = readJournal(path, options.logger);
      const startUp = startRun(previous, { pipeline: options.pipeline, threshold: options.threshold, pid: options.pid, now: options.wallClock() });
      const journal = new CrashJournal(path, lock, startUp, options);
      journal.#write();
      return journal;
    }
    return undefined;
  }

  /** The suspect ranges not yet passed by the committed offsets. */
  get suspects(): readonly SuspectRange[] {
    return this.#content.suspects;
  }

  /** The suspect range holding this record's offset, if any. */
  suspectOf(record: TopicPartition & { readonly offset: number }): SuspectRange | undefined {
    for (const s of this.#content.suspects) {
      if (s.partition === record.partition && s.topic === record.topic && record.offset >= s.from && record.offset <= s.to) return s;
    }
    return undefined;
  }

  /**
   * A block (one partition's records, in offset order) is about to be processed: journaled first when its
   * offsets are not covered yet, or the models running changed. Call `finished` with the same array after.
   */
  handing(records: readonly InboundRecord[], running: Running): void {
    const first = records[0];
    const last = records[records.length - 1];
    if (first === undefined || last === undefined) return;
    const key = tpKey(first);
    let marks = this.#marks.get(key);
    if (marks === undefined) {
      marks = { tp: { topic: first.topic, partition: first.partition }, blocks: [], lastHanded: -1, journaled: undefined };
      this.#marks.set(key, marks);
    }
    marks.blocks.push([first.offset, last.offset]);
    marks.lastHanded = last.offset;
    const covered = marks.journaled !== undefined && first.offset >= marks.journaled.from && last.offset <= marks.journaled.to;
    if (covered && running.generation === this.#generation) return;
    const to = marks.journaled === undefined || last.offset > marks.journaled.to ? last.offset + this.#options.margin : marks.journaled.to;
    marks.journaled = { from: first.offset, to };
    this.#generation = running.generation;
    this.#refresh(running.describe());
  }

  /** Whether this record's output crashed the process when produced alone (an output poison of its suspect range). */
  outputPoison(record: OffsetOf): boolean {
    return this.suspectOf(record)?.outputPoison?.includes(record.offset) === true;
  }

  /**
   * The output of `record` (of a suspect range) alone is about to be produced: written first, so that a crash
   * now names it; `undefined` when that is over. One write each.
   */
  producing(record: OffsetOf | undefined): void {
    if (this.#closed) return;
    const producing = record === undefined ? undefined : { topic: record.topic, partition: record.partition, offset: record.offset };
    if (producing === undefined && this.#content.run.producing === undefined) return;
    const { producing: _was, ...run } = this.#content.run;
    this.#content = { ...this.#content, run: producing === undefined ? run : { ...run, producing } };
    this.#write();
  }

  /** The block handed with `records` is done: its outputs are written (or it will never be), whatever they are. */
  finished(records: readonly InboundRecord[]): void {
    const first = records[0];
    if (first === undefined) return;
    const marks = this.#marks.get(tpKey(first));
    const at = marks?.blocks.findIndex(([from]) => from === first.offset) ?? -1;
    if (at >= 0) marks!.blocks.splice(at, 1);
  }

  /**
   * `records` of `suspect` ran in isolation, the `poison` offsets among them dead-lettered: counted in the
   * journal (the status survives restarts) and the range ends at its last poison (`afterIsolation`). One write
   * per isolated piece, which took child processes anyway. Returns the range as it is now.
   */
  isolated(suspect: SuspectRange, records: number, poison: readonly number[]): SuspectRange {
    const at = this.#content.suspects.findIndex((s) => sameSuspect(s, suspect));
    const current = this.#content.suspects[at];
    if (current === undefined || this.#closed) return suspect;
    const next = afterIsolation(current, records, poison);
    const suspects = [...this.#content.suspects];
    suspects[at] = next;
    this.#content = { ...this.#content, suspects };
    this.#write();
    return next;
  }

  /** Offsets committed (the next offset to read, per partition): suspect ranges they passed are cleared. */
  committed(offsets: readonly (TopicPartition & { readonly offset: number })[]): SuspectRange[] {
    if (this.#content.suspects.length === 0 || this.#closed) return [];
    const { cleared, left } = clearCommitted(this.#content.suspects, offsets);
    if (cleared.length > 0) {
      this.#content = { ...this.#content, suspects: left };
      this.#write();
    }
    return cleared;
  }

  /** The run ends under control (stopped, forced stop, failed): the next start is not counted as after a crash. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const { producing: _was, ...run } = this.#content.run;
    this.#content = { ...this.#content, run: { ...run, clean: true, inflight: [] } };
    this.#write();
    rmSync(this.#lock, { force: true });
  }

  /** Recomputes every partition's range (see the module comment) and writes the journal. */
  #refresh(models: readonly string[]): void {
    const inflight: OffsetRange[] = [];
    for (const [key, marks] of this.#marks) {
      // Everything below its first block still in processing is done (all of it, with none in processing):
      // the range starts there, and still covers the blocks to come up to its end, which then cost no write.
      let from = marks.lastHanded + 1;
      for (const [first] of marks.blocks) from = Math.min(from, first);
      if (marks.journaled === undefined || from > marks.journaled.to) {
        this.#marks.delete(key);
        continue;
      }
      marks.journaled = { from, to: marks.journaled.to };
      inflight.push({ ...marks.tp, from, to: marks.journaled.to });
    }
    this.#content = { ...this.#content, run: { ...this.#content.run, models, inflight } };
    this.#write();
  }

  /** tmp + rename. A failure is logged once and processing goes on: the journal only protects against crash loops. */
  #write(): void {
    const tmp = `${this.path}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify(this.#content));
      renameSync(tmp, this.path);
      this.#writeFailed = false;
    } catch (err) {
      if (!this.#writeFailed) this.#options.logger.warn({ err: asVerdictError(err).toJSON(), path: this.path }, 'crash journal write failed; a crash now would not be recorded');
      this.#writeFailed = true;
    }
  }
}

/** Creates the lock with this pid, or takes over a stale one; false when a live other process holds it. */
function takeLock(lock: string, pid: number): boolean {
  try {
    const fd = openSync(lock, 'wx');
    writeSync(fd, String(pid));
    closeSync(fd);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const holder = Number(readFileSync(lock, 'utf8').trim());
  if (Number.isSafeInteger(holder) && holder > 0 && holder !== pid && alive(holder)) return false;
  writeFileSync(lock, String(pid));
  return true;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but is not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The journal in `path`, or undefined when there is none or it cannot be read (logged: a fresh start). */
function readJournal(path: string, logger: Logger): JournalContent | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    logger.warn({ err: asVerdictError(err).toJSON(), path }, 'crash journal unreadable; starting a fresh one');
    return undefined;
  }
  try {
    return journalSchema.parse(JSON.parse(text));
  } catch (err) {
    logger.warn({ err: asVerdictError(err).toJSON(), path }, 'crash journal invalid; starting a fresh one');
    return undefined;
  }
}
