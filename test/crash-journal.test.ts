/**
 * The crash journal: what a start-up concludes from the previous runs (crash-history.ts, pure), and the
 * journal file itself (crash-journal.ts): written ahead of processing but not per block, atomic, one live
 * process per file, suspect ranges cleared once committed past.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { silentLogger } from '../core/log.js';
import type { InboundRecord } from '../pipeline/record.js';
import { clearCommitted, intersectRanges, startRun, withOutputPoison, type CrashEntry, type JournalContent } from '../streams/runtime/crash-history.js';
import { CrashJournal, type CrashJournalOptions } from '../streams/runtime/crash-journal.js';

const crash = (inflight: CrashEntry['inflight']): CrashEntry => ({ pid: 1, startedAt: 0, detectedAt: 0, models: [], inflight });
const unclean = (inflight: CrashEntry['inflight'], crashes: CrashEntry[] = []): JournalContent => ({
  version: 1, pipeline: 'p', run: { pid: 9, startedAt: 5, clean: false, models: ['m=a@1'], inflight }, crashes, suspects: [],
});

describe('crash history', () => {
  test('a first start and a start after a clean stop count no crash', () => {
    assert.equal(startRun(undefined, { pipeline: 'p', threshold: 2, pid: 1, now: 10 }).consecutive, 0);
    const clean: JournalContent = { ...unclean([{ topic: 't', partition: 0, from: 0, to: 9 }], [crash([])]), run: { pid: 9, startedAt: 5, clean: true, models: [], inflight: [] } };
    const s = startRun(clean, { pipeline: 'p', threshold: 1, pid: 1, now: 10 });
    assert.equal(s.consecutive, 0, 'a clean stop breaks the run of crashes');
    assert.deepEqual(s.found, []);
    assert.deepEqual(s.content.run, { pid: 1, startedAt: 10, clean: false, models: [], inflight: [] });
  });

  test('a range in flight in N consecutive crashes is suspect: the intersection, per partition present in all', () => {
    const first = startRun(unclean([{ topic: 't', partition: 0, from: 100, to: 400 }, { topic: 't', partition: 1, from: 0, to: 50 }]), { pipeline: 'p', threshold: 2, pid: 2, now: 20 });
    assert.equal(first.consecutive, 1);
    assert.deepEqual(first.found, [], 'one crash is not enough');
    assert.equal(first.crash?.pid, 9);
    const second = startRun({ ...first.content, run: { ...first.content.run, inflight: [{ topic: 't', partition: 0, from: 250, to: 600 }, { topic: 't', partition: 2, from: 0, to: 50 }] } },
      { pipeline: 'p', threshold: 2, pid: 3, now: 30 });
    assert.equal(second.consecutive, 2);
    assert.deepEqual(second.found, [{ topic: 't', partition: 0, from: 250, to: 400, crashes: 2, foundAt: 30 }]);
    assert.deepEqual(second.content.suspects, second.found);
    assert.deepEqual(second.content.crashes, [], 'the crashes that made a suspect are consumed');
  });

  test('ranges that do not overlap make no suspect, and the history slides', () => {
    assert.deepEqual(intersectRanges([crash([{ topic: 't', partition: 0, from: 0, to: 9 }]), crash([{ topic: 't', partition: 0, from: 10, to: 19 }])]), []);
    let content: JournalContent | undefined = unclean([{ topic: 't', partition: 0, from: 0, to: 9 }]);
    for (let i = 1; i <= 20; i++) {
      const s = startRun(content, { pipeline: 'p', threshold: 3, pid: i, now: i });
      content = { ...s.content, run: { ...s.content.run, inflight: [{ topic: 't', partition: 0, from: i * 10, to: i * 10 + 9 }] } };
    }
    assert.equal(content.crashes.length, 16, 'at most HISTORY crashes are kept');
  });

  test('a crash while one record\'s output was produced alone names it: an output poison of its range, which ends there; the crash makes no new suspect', () => {
    const suspect = { topic: 't', partition: 0, from: 100, to: 1_000, crashes: 2, foundAt: 7 };
    const producing = { topic: 't', partition: 0, offset: 117 };
    const previous: JournalContent = {
      ...unclean([{ topic: 't', partition: 0, from: 100, to: 1_000 }], [crash([{ topic: 't', partition: 0, from: 100, to: 1_000 }])]),
      run: { pid: 9, startedAt: 5, clean: false, models: [], inflight: [{ topic: 't', partition: 0, from: 100, to: 1_000 }], producing },
      suspects: [suspect],
    };
    // Threshold 1: an ordinary crash would make its range suspect at once; this one is explained.
    const s = startRun(previous, { pipeline: 'p', threshold: 1, pid: 2, now: 20 });
    assert.deepEqual(s.outputPoison, producing);
    assert.deepEqual(s.found, []);
    assert.equal(s.content.crashes.length, 1, 'not added to the history');
    assert.equal(s.consecutive, 2);
    assert.deepEqual(s.content.suspects, [{ ...suspect, to: 117, poison: 1, outputPoison: [117] }]);
    assert.equal(s.content.run.producing, undefined, 'the new run produces nothing alone yet');
    // Named again (its dead letter's run crashed there too): counted once. A second one keeps the end.
    assert.deepEqual(withOutputPoison(s.content.suspects, producing, 30), s.content.suspects);
    assert.deepEqual(withOutputPoison(s.content.suspects, { ...producing, offset: 110 }, 30)[0], { ...suspect, to: 117, poison: 2, outputPoison: [117, 110] });
    // Held by no suspect range (a journal edited by hand): a range of its own.
    assert.deepEqual(withOutputPoison([], producing, 30), [{ topic: 't', partition: 0, from: 117, to: 117, crashes: 1, foundAt: 30, poison: 1, outputPoison: [117] }]);
  });

  test('a suspect is cleared once the committed offset passes its end', () => {
    const suspects = [{ topic: 't', partition: 0, from: 5, to: 9, crashes: 2, foundAt: 0 }];
    assert.equal(clearCommitted(suspects, [{ topic: 't', partition: 0, offset: 9 }]).cleared.length, 0, 'offset 9 is still to be read');
    assert.equal(clearCommitted(suspects, [{ topic: 't', partition: 1, offset: 99 }]).cleared.length, 0);
    assert.deepEqual(clearCommitted(suspects, [{ topic: 't', partition: 0, offset: 10 }]), { cleared: suspects, left: [] });
  });
});

function block(partition: number, from: number, to: number): InboundRecord[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ({
    topic: 't', partition, offset: from + i, key: null, value: null, headers: [], timestamp: 0,
  }));
}

describe('crash journal file', () => {
  const options = (dir: string, pid = process.pid): CrashJournalOptions => ({
    dir, groupId: 'g/1', pipeline: 'card risk', threshold: 2, margin: 100, logger: silentLogger, wallClock: () => 1_000, pid,
  });
  const running = { generation: 0, describe: () => ['gbt=fraud_gbt@3'] };
  const onDisk = (j: CrashJournal): JournalContent => JSON.parse(readFileSync(j.path, 'utf8')) as JournalContent;

  test('a block is journaled before it is processed, ahead by the margin; blocks inside it cost no write', () => {
    const dir = mkdtempSync(join(tmpdir(), 'verdict-journal-'));
    const journal = CrashJournal.open(options(dir))!;
    assert.equal(journal.path, join(dir, 'g_1.card_risk.json'));
    const b1 = block(0, 0, 49);
    journal.handing(b1, running);
    assert.deepEqual(onDisk(journal).run.inflight, [{ topic: 't', partition: 0, from: 0, to: 149 }]);
    assert.deepEqual(onDisk(journal).run.models, ['gbt=fraud_gbt@3']);
    // Inside the journaled range: no write (the file is replaced by a marker to prove it).
    writeFileSync(journal.path, 'untouched');
    const b2 = block(0, 50, 149);
    journal.handing(b2, running);
    assert.equal(readFileSync(journal.path, 'utf8'), 'untouched');
    // Past it: written, from the first block still in processing.
    journal.finished(b1);
    journal.handing(block(1, 0, 9), running);
    assert.deepEqual(onDisk(journal).run.inflight, [{ topic: 't', partition: 0, from: 50, to: 149 }, { topic: 't', partition: 1, from: 0, to: 109 }]);
    // A partition with nothing in processing drops out at the next write.
    journal.finished(b2);
    journal.handing(block(1, 110, 120), running);
    assert.deepEqual(onDisk(journal).run.inflight, [{ topic: 't', partition: 1, from: 0, to: 220 }]);
    // A partition with nothing in processing keeps the rest of its range: its next blocks inside it cost no write.
    journal.finished(block(1, 0, 9));
    journal.finished(block(1, 110, 120));
    journal.handing(block(2, 0, 9), running);
    assert.deepEqual(onDisk(journal).run.inflight, [{ topic: 't', partition: 1, from: 121, to: 220 }, { topic: 't', partition: 2, from: 0, to: 109 }]);
    writeFileSync(journal.path, 'untouched');
    journal.handing(block(1, 121, 130), running);
    assert.equal(readFileSync(journal.path, 'utf8'), 'untouched');
    // Changed models are journaled even inside the range.
    journal.handing(block(1, 131, 140), { generation: 1, describe: () => ['gbt=fraud_gbt@4'] });
    assert.deepEqual(onDisk(journal).run.models, ['gbt=fraud_gbt@4']);
    journal.close();
    assert.deepEqual({ clean: onDisk(journal).run.clean, inflight: onDisk(journal).run.inflight }, { clean: true, inflight: [] });
    assert.deepEqual(readdirSync(dir).sort(), ['g_1.card_risk.json'], 'no temporary file or lock left');
  });

  test('a run that never closed is a crash at the next start; two make the common range suspect, cleared once committed past', () => {
    const dir = mkdtempSync(join(tmpdir(), 'verdict-journal-'));
    const first = CrashJournal.open(options(dir))!;
    first.handing(block(3, 200, 299), running);
    // No close: the process "died". The next one (the same pid, as a restarted container's) takes its lock over.
    const second = CrashJournal.open(options(dir))!;
    assert.equal(second.startUp.consecutive, 1);
    assert.deepEqual(second.startUp.crash?.inflight, [{ topic: 't', partition: 3, from: 200, to: 399 }]);
    second.handing(block(3, 150, 260), running);
    const third = CrashJournal.open(options(dir))!;
    assert.deepEqual(third.suspects.map((s) => [s.partition, s.from, s.to]), [[3, 200, 360]]);
    assert.equal(third.suspectOf({ topic: 't', partition: 3, offset: 250 })?.from, 200);
    assert.equal(third.suspectOf({ topic: 't', partition: 3, offset: 361 }), undefined);
    assert.deepEqual(third.committed([{ topic: 't', partition: 3, offset: 300 }]), []);
    assert.equal(third.committed([{ topic: 't', partition: 3, offset: 361 }]).length, 1);
    assert.deepEqual(onDisk(third).suspects, []);
    third.close();
    const fourth = CrashJournal.open(options(dir))!;
    assert.equal(fourth.startUp.consecutive, 0);
    fourth.close();
  });

  test('a block stays in flight until finished; the record produced alone is journaled ahead, and a clean stop drops it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'verdict-journal-'));
    const first = CrashJournal.open(options(dir))!;
    first.handing(block(0, 0, 9), running);
    const second = CrashJournal.open(options(dir))!;
    second.handing(block(0, 0, 9), running);
    const journal = CrashJournal.open(options(dir))!;
    assert.equal(journal.suspects.length, 1);
    const b = block(0, 0, 9);
    journal.handing(b, running);
    // Processed but not written: still in flight when another partition's block forces a write.
    journal.handing(block(1, 0, 9), running);
    assert.deepEqual(onDisk(journal).run.inflight[0], { topic: 't', partition: 0, from: 0, to: 109 });
    journal.producing(b[3]);
    assert.deepEqual(onDisk(journal).run.producing, { topic: 't', partition: 0, offset: 3 });
    assert.equal(journal.outputPoison(b[3]!), false);
    journal.producing(undefined);
    assert.equal(onDisk(journal).run.producing, undefined);
    journal.producing(b[4]);
    // The process "dies" producing offset 4 alone: the next start makes it an output poison.
    const next = CrashJournal.open(options(dir))!;
    assert.deepEqual(next.startUp.outputPoison, { topic: 't', partition: 0, offset: 4 });
    assert.equal(next.outputPoison(b[4]!), true);
    assert.equal(next.outputPoison(b[3]!), false);
    next.producing(b[5]);
    next.close();
    assert.equal(onDisk(next).run.producing, undefined, 'a clean stop names no record');
  });

  test('a second live daemon of the same group and pipeline takes the next slot', () => {
    const dir = mkdtempSync(join(tmpdir(), 'verdict-journal-'));
    const mine = CrashJournal.open(options(dir))!;
    // Another process id: this (live) process's lock is not its own.
    const other = CrashJournal.open(options(dir, process.pid + 1_000_000))!;
    assert.equal(other.path, join(dir, 'g_1.card_risk-1.json'));
    mine.close();
    other.close();
  });

  test('an unreadable journal is a fresh start, not a failure', () => {
    const dir = mkdtempSync(join(tmpdir(), 'verdict-journal-'));
    writeFileSync(join(dir, 'g_1.card_risk.json'), '{"version":1,');
    const journal = CrashJournal.open(options(dir))!;
    assert.equal(journal.startUp.consecutive, 0);
    assert.equal(onDisk(journal).version, 1);
    journal.close();
    assert.ok(!existsSync(`${journal.path}.lock`));
  });
});
