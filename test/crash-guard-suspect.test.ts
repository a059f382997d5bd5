/**
 * A suspect range after its poison is found (runtime/crash-guard.ts with a fake isolation: the logic only;
 * test/poison-isolation.test.ts and test/kafka/daemon-crash-loop.test.ts run real child processes). The
 * journal writes its ranges ahead of processing, so a suspect range reaches far past what was in flight
 * (a user trial: 0..1151 on a 300-record partition, isolating every new record for ever): it must end at the
 * poison record, its later offsets run normally, it is cleared once committed past the poison, and its
 * counts survive a restart.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PoisonSuspectedError } from '../core/errors.js';
import { silentLogger } from '../core/log.js';
import type { EncodedOutcome } from '../pipeline/outcome.js';
import type { InboundRecord } from '../pipeline/record.js';
import type { ModelBindings } from '../pipeline/route/bindings.js';
import { CrashGuard } from '../runtime/crash-guard.js';
import type { Isolated } from '../runtime/poison-isolation.js';
import { CrashJournal, type CrashJournalOptions } from '../streams/runtime/crash-journal.js';

const BLOCK = 128;
/** The guard reads only the generation (and the steps, to name them in the journal). */
const bindings = { generation: 0, steps: [] } as unknown as ModelBindings;
const POISON_AT = 117;

function block(from: number, to: number): InboundRecord[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ({
    topic: 't', partition: 0, offset: from + i, key: null, value: null, headers: [], timestamp: 0,
  }));
}

const outcome = (r: InboundRecord, label: string): EncodedOutcome => ({
  kind: label === PoisonSuspectedError.code ? 'dead-letter' : 'decision',
  output: { topic: 'out', key: null, value: Buffer.from(String(r.offset)), headers: [] },
  label,
});

/** Records the offsets each path saw; the isolation blames POISON_AT, as a child killed by it would. */
function paths() {
  const isolated: number[] = [];
  const normal: number[] = [];
  const isolation = {
    isolate: (records: readonly InboundRecord[]): Promise<Isolated> => {
      isolated.push(...records.map((r) => r.offset));
      const poison = records.filter((r) => r.offset === POISON_AT);
      return Promise.resolve({ encoded: records.map((r) => outcome(r, r.offset === POISON_AT ? PoisonSuspectedError.code : 'approve')), poison, children: 1 });
    },
    close: (): Promise<void> => Promise.resolve(),
  };
  const run = (records: readonly InboundRecord[]): Promise<EncodedOutcome[]> => {
    normal.push(...records.map((r) => r.offset));
    return Promise.resolve(records.map((r) => outcome(r, 'approve')));
  };
  return { isolated, normal, isolation, run };
}

test('a suspect range ends at its poison: later offsets of the old range run normally, and it clears once committed past the poison, its counts kept across a restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-suspect-'));
  // The daemon's margin: 8 blocks ahead.
  const options: CrashJournalOptions = {
    dir, groupId: 'g', pipeline: 'p', threshold: 2, margin: 8 * BLOCK, logger: silentLogger, wallClock: () => 1_000, pid: process.pid,
  };
  const running = { generation: 0, describe: () => [] };
  // Two runs die on the first block (0..127): journaled 0..1151 each time, as in the trial.
  CrashJournal.open(options)!.handing(block(0, BLOCK - 1), running);
  CrashJournal.open(options)!.handing(block(0, BLOCK - 1), running);
  const journal = CrashJournal.open(options)!;
  assert.deepEqual(journal.suspects.map((s) => [s.from, s.to]), [[0, 8 * BLOCK + BLOCK - 1]], 'the written-ahead range, far past the block in flight');

  const first = paths();
  const guard = new CrashGuard({ journal, isolation: first.isolation, steps: [], pipeline: 'p', deadLetterTopic: 'dlq', logger: silentLogger });
  const outcomes = await guard.process(block(0, BLOCK - 1), undefined, bindings, first.run);
  assert.deepEqual(first.isolated, block(0, BLOCK - 1).map((r) => r.offset), 'the block in flight at the crashes is isolated');
  assert.equal(outcomes[POISON_AT]?.label, PoisonSuspectedError.code);
  assert.deepEqual(journal.suspects.map((s) => [s.from, s.to, s.isolated, s.poison]), [[0, POISON_AT, BLOCK, 1]], 'the range now ends at its poison');

  // A restart (clean) before the commit: the range and its counts come back from the journal.
  await guard.close();
  const reopened = CrashJournal.open(options)!;
  const second = paths();
  const restarted = new CrashGuard({ journal: reopened, isolation: second.isolation, steps: [], pipeline: 'p', deadLetterTopic: 'dlq', logger: silentLogger });
  assert.deepEqual(restarted.status().suspects.map((s) => ({ from: s.from, to: s.to, isolated: s.isolated, poison: s.poison, cleared: s.cleared })),
    [{ from: 0, to: POISON_AT, isolated: BLOCK, poison: 1, cleared: false }]);
  // Offsets of the old range after the poison (and new ones) run normally.
  await restarted.process(block(BLOCK, 3 * BLOCK - 1), undefined, bindings, second.run);
  assert.deepEqual(second.isolated, [], 'nothing after the poison is isolated');
  assert.deepEqual(second.normal, block(BLOCK, 3 * BLOCK - 1).map((r) => r.offset));

  // Committed up to the poison (the next offset to read is the poison): not yet; one past it: cleared.
  restarted.committed([{ topic: 't', partition: 0, offset: POISON_AT }]);
  assert.equal(reopened.suspects.length, 1);
  restarted.committed([{ topic: 't', partition: 0, offset: POISON_AT + 1 }]);
  assert.deepEqual(reopened.suspects, []);
  assert.deepEqual(restarted.status().suspects.map((s) => ({ to: s.to, isolated: s.isolated, poison: s.poison, cleared: s.cleared })),
    [{ to: POISON_AT, isolated: BLOCK, poison: 1, cleared: true }]);
  await restarted.close();
});

test('without a poison found, the range keeps its end and its records stay isolated', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-suspect-'));
  const options: CrashJournalOptions = {
    dir, groupId: 'g', pipeline: 'p', threshold: 2, margin: BLOCK, logger: silentLogger, wallClock: () => 1_000, pid: process.pid,
  };
  const running = { generation: 0, describe: () => [] };
  CrashJournal.open(options)!.handing(block(500, 500 + BLOCK - 1), running);
  CrashJournal.open(options)!.handing(block(500, 500 + BLOCK - 1), running);
  const journal = CrashJournal.open(options)!;
  const p = paths();
  const guard = new CrashGuard({ journal, isolation: p.isolation, steps: [], pipeline: 'p', deadLetterTopic: 'dlq', logger: silentLogger });
  await guard.process(block(500, 500 + BLOCK - 1), undefined, bindings, p.run);
  assert.deepEqual(journal.suspects.map((s) => [s.from, s.to, s.isolated, s.poison]), [[500, 500 + 2 * BLOCK - 1, BLOCK, 0]]);
  await guard.process(block(500 + BLOCK, 500 + BLOCK + 9), undefined, bindings, p.run);
  assert.equal(p.isolated.length, BLOCK + 10, 'the rest of the range is still isolated');
  assert.deepEqual(p.normal, []);
  await guard.close();
});
