/**
 * The model actor's units of rows: a caller's block, and the row ranges of blocks that the mailbox queues and
 * batches are cut from (the README's "Words": block, row range, batch).
 */
import type { VerdictError } from '../core/errors.js';
import type { RowInputs, RowOutputs, RowResults } from '../models/types.js';
import type { Withdrawal } from './withdrawal.js';

/** One caller's rows, settled together: the unit the router sends for a whole block of events. */
export interface Block {
  /** The caller's rows, each converted to its inputs' declared element types (see checkRow). */
  readonly rows: RowInputs[];
  readonly outputs: Array<RowOutputs | undefined>;
  readonly errors: Array<VerdictError | undefined>;
  /** Rows not settled yet; the block resolves when it reaches 0. */
  unsettled: number;
  readonly resolve: (result: RowResults) => void;
  readonly withdrawal: Withdrawal | undefined;
}

/** A contiguous run of a block's rows: what the mailbox queues, and what a batch is made of. */
export interface RowRange {
  readonly block: Block;
  readonly start: number;
  readonly end: number;
}

/** How the micro-batcher sizes and splits row ranges (see batcher.ts). */
export const rowRanges = {
  size: (s: RowRange): number => s.end - s.start,
  split: (s: RowRange, rows: number): readonly [RowRange, RowRange] => [
    { block: s.block, start: s.start, end: s.start + rows },
    { block: s.block, start: s.start + rows, end: s.end },
  ],
};

/** Rows in a batch of row ranges. */
export function batchRows(batch: readonly RowRange[]): number {
  let n = 0;
  for (const s of batch) n += s.end - s.start;
  return n;
}

/** A batch's rows, in order. */
export function batchRowsOf(batch: readonly RowRange[]): RowInputs[] {
  const rows: RowInputs[] = [];
  for (const s of batch) for (let i = s.start; i < s.end; i++) rows.push(s.block.rows[i]!);
  return rows;
}

/** Cuts a batch of row ranges after its first `rows` rows. */
export function splitRows(batch: readonly RowRange[], rows: number): [RowRange[], RowRange[]] {
  const head: RowRange[] = [];
  const tail: RowRange[] = [];
  let left = rows;
  for (const s of batch) {
    const size = s.end - s.start;
    if (left >= size) head.push(s);
    else if (left <= 0) tail.push(s);
    else {
      const [first, rest] = rowRanges.split(s, left);
      head.push(first);
      tail.push(rest);
    }
    left -= size;
  }
  return [head, tail];
}
