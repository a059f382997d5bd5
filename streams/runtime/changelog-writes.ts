/**
 * When a block's changelog records are written, and when its offsets may be committed: the stream's half
 * of the state's exactness invariant (README "Per-key state").
 *
 * A block's changelog records (its keys' state after the block, then the partition's meta record) are
 * written only once the block's outcomes, and the outcomes of every earlier block of its partition, are
 * acknowledged by the sink; and the block's offsets are handed to the commit tracker only once its
 * changelog records are acknowledged. So, for every partition:
 *
 *   committed offset  <=  the changelog's applied-through offset  <=  the last offset whose outcome was written
 *
 * A restart restores the state as of the changelog and replays from the committed offset: a replayed record
 * the changelog already covers is not applied again (its decision was written the first time), and every
 * other one is applied on exactly the state the first run applied it to.
 *
 * One write is in flight at a time; what arrives meanwhile is coalesced into the next, keeping only each
 * key's latest record per partition (what compaction would keep), in order, so a partition's meta record
 * stays last.
 */
import type { VerdictError } from '../../core/errors.js';
import type { OutboundRecord, TopicPartition } from '../../pipeline/record.js';
import type { RejectedRecord } from '../types.js';

/** A block as the writes track it: its partition, its records' offsets, its changelog records. */
export interface ChangelogBlock<B> {
  readonly tp: TopicPartition;
  readonly block: B;
  readonly changelog: readonly OutboundRecord[];
}

export interface ChangelogWritesDeps<B> {
  /** One changelog write, retried by the caller until it succeeds or the stream stops; lists refused records. */
  readonly send: (records: readonly OutboundRecord[]) => Promise<readonly RejectedRecord[]>;
  /** The block's changelog is written (or it had none): its offsets may be committed. */
  readonly written: (block: B) => void;
  /** The broker refused a changelog record of the block for itself: the block's partition must halt there. */
  readonly refused: (block: B, error: VerdictError) => void;
  /** A write failed as a whole and will not be retried (the stream is stopping): nothing of it is acknowledged. */
  readonly failed: (error: unknown) => void;
}

interface Entry<B> extends ChangelogBlock<B> {
  delivered: boolean;
}

const tpKey = (tp: TopicPartition): string => `${tp.topic}\u0000${tp.partition}`;

export class ChangelogWrites<B> {
  readonly #deps: ChangelogWritesDeps<B>;
  /** Per partition, blocks handed to processing and not yet written, in offset order. */
  readonly #queues = new Map<string, Entry<B>[]>();
  /** Delivered blocks (in partition order) whose records wait for the next write. */
  #ready: Entry<B>[] = [];
  #writing = false;

  constructor(deps: ChangelogWritesDeps<B>) {
    this.#deps = deps;
  }

  /** A block handed to processing: called in offset order per partition. */
  opened(entry: ChangelogBlock<B>): ChangelogBlock<B> {
    const key = tpKey(entry.tp);
    const queued: Entry<B> = { ...entry, delivered: false };
    const queue = this.#queues.get(key);
    if (queue === undefined) this.#queues.set(key, [queued]);
    else queue.push(queued);
    return queued;
  }

  /** The block's outcomes are acknowledged by the sink. */
  delivered(opened: ChangelogBlock<B>): void {
    const entry = opened as Entry<B>;
    entry.delivered = true;
    const key = tpKey(entry.tp);
    const queue = this.#queues.get(key);
    if (queue === undefined) return;
    // The delivered prefix of the partition's blocks, in order.
    let n = 0;
    while (n < queue.length && queue[n]!.delivered) n++;
    if (n === 0) return;
    const prefix = queue.splice(0, n);
    if (queue.length === 0) this.#queues.delete(key);
    for (const e of prefix) {
      // Nothing to write: its offsets may go to the tracker now, which commits a partition only up to its
      // first unacknowledged record, so an earlier block still waiting for its write holds them back.
      if (e.changelog.length === 0) this.#deps.written(e.block);
      else this.#ready.push(e);
    }
    this.#pump();
  }

  /** Forgets a partition's blocks not yet written (revoked, or halted): their offsets are never acknowledged here. */
  drop(tp: TopicPartition, from = -Infinity, offsetOf: (block: B) => number = () => Infinity): void {
    const key = tpKey(tp);
    const queue = this.#queues.get(key);
    if (queue !== undefined) {
      const kept = queue.filter((e) => offsetOf(e.block) < from);
      if (kept.length === 0) this.#queues.delete(key);
      else this.#queues.set(key, kept);
    }
    this.#ready = this.#ready.filter((e) => tpKey(e.tp) !== key || offsetOf(e.block) < from);
  }

  /** Blocks handed over and not yet written (for tests and drains). */
  get pending(): number {
    let n = this.#ready.length;
    for (const q of this.#queues.values()) n += q.length;
    return n;
  }

  #pump(): void {
    if (this.#writing || this.#ready.length === 0) return;
    const entries = this.#ready;
    this.#ready = [];
    const records = latestPerKey(entries.flatMap((e) => e.changelog));
    this.#writing = true;
    void this.#write(entries, records);
  }

  async #write(entries: readonly Entry<B>[], records: readonly OutboundRecord[]): Promise<void> {
    try {
      const rejected = records.length === 0 ? [] : await this.#deps.send(records);
      const refusedIn = new Map<string, VerdictError>();
      for (const { index, error } of rejected) {
        const r = records[index];
        if (r?.partition !== undefined) refusedIn.set(`${r.topic}\u0000${r.partition}`, error);
      }
      const halted = new Set<string>();
      for (const e of entries) {
        const key = tpKey(e.tp);
        // Changelog partition p holds input partition p's state: a refusal there halts the input partition.
        const error = refusedIn.get(`${e.changelog[0]?.topic ?? ''}\u0000${e.tp.partition}`);
        if (halted.has(key)) continue;
        if (error !== undefined) {
          halted.add(key);
          this.#deps.refused(e.block, error);
          continue;
        }
        this.#deps.written(e.block);
      }
    } catch (err) {
      this.#deps.failed(err);
    } finally {
      this.#writing = false;
      this.#pump();
    }
  }
}

/**
 * Each (topic, partition, key)'s last record only, in the order of those last occurrences: what a
 * compacted topic keeps, so coalescing blocks writes each key once. Keys are compared by their bytes.
 */
export function latestPerKey(records: readonly OutboundRecord[]): OutboundRecord[] {
  const last = new Map<string, number>();
  records.forEach((r, i) => last.set(recordKey(r), i));
  return records.filter((r, i) => last.get(recordKey(r)) === i);
}

function recordKey(r: OutboundRecord): string {
  const key = r.key === null ? '\u0001null' : typeof r.key === 'string' ? `s${r.key}` : `b${r.key.toString('latin1')}`;
  return `${r.topic}\u0000${r.partition ?? -1}\u0000${key}`;
}
