/** The commit tracker: ordered commits from out-of-order acks, gaps, revocation, counts, and the gate. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createRandom } from '../bench/prng.js';
import { CommitTracker } from '../streams/runtime/commit-tracker.js';
import type { TopicPartition } from '../pipeline/record.js';

const p0: TopicPartition = { topic: 't', partition: 0 };
const p1: TopicPartition = { topic: 't', partition: 1 };

void describe('CommitTracker', () => {
  void test('in-order acks make the next offset committable, reported once', () => {
    const tracker = new CommitTracker();
    for (let o = 0; o < 5; o++) tracker.track(p0, o);
    assert.deepEqual(tracker.committable(), []);
    tracker.ack(p0, 0);
    tracker.ack(p0, 1);
    assert.deepEqual(tracker.committable(), [{ topic: 't', partition: 0, offset: 2 }]);
    assert.deepEqual(tracker.committable(), []);
  });

  void test('an out-of-order ack holds the commit at the first unacked offset until the hole fills', () => {
    const tracker = new CommitTracker();
    for (let o = 10; o < 15; o++) tracker.track(p0, o);
    tracker.ack(p0, 12);
    tracker.ack(p0, 14);
    tracker.ack(p0, 11);
    assert.deepEqual(tracker.committable(), []);
    tracker.ack(p0, 10);
    assert.deepEqual(tracker.committable(), [{ topic: 't', partition: 0, offset: 13 }]);
    tracker.ack(p0, 13);
    assert.deepEqual(tracker.committable(), [{ topic: 't', partition: 0, offset: 15 }]);
    assert.equal(tracker.inflight(), 0);
  });

  void test('gaps between tracked offsets are skipped: only tracked offsets hold the commit back', () => {
    const tracker = new CommitTracker();
    for (const o of [3, 7, 8, 20, 1000]) tracker.track(p0, o);
    tracker.ack(p0, 1000);
    tracker.ack(p0, 8);
    assert.deepEqual(tracker.committable(), []);
    tracker.ack(p0, 3);
    assert.deepEqual(tracker.committable(), [{ topic: 't', partition: 0, offset: 4 }]);
    tracker.ack(p0, 7);
    assert.deepEqual(tracker.committable(), [{ topic: 't', partition: 0, offset: 9 }]);
    tracker.ack(p0, 20);
    assert.deepEqual(tracker.committable(), [{ topic: 't', partition: 0, offset: 1001 }]);
  });

  void test('duplicate acks and acks of untracked offsets are ignored', () => {
    const tracker = new CommitTracker();
    for (const o of [0, 2, 4]) tracker.track(p0, o);
    assert.equal(tracker.ack(p0, 2), true);
    assert.equal(tracker.ack(p0, 2), false);
    assert.equal(tracker.ack(p0, 3), false);
    assert.equal(tracker.ack(p0, 99), false);
    assert.equal(tracker.ack(p1, 0), false);
    assert.equal(tracker.inflight(p0), 2);
    assert.equal(tracker.ack(p0, 0), true);
    assert.equal(tracker.ack(p0, 0), false);
    assert.deepEqual(tracker.committable(), [{ topic: 't', partition: 0, offset: 3 }]);
    assert.equal(tracker.inflight(), 1);
  });

  void test('offsets must increase per partition', () => {
    const tracker = new CommitTracker();
    tracker.track(p0, 5);
    assert.throws(() => tracker.track(p0, 5), RangeError);
    assert.throws(() => tracker.track(p0, 4), RangeError);
    tracker.track(p1, 0);
  });

  void test('inflight counts unacked records in total and per partition', () => {
    const tracker = new CommitTracker();
    for (let o = 0; o < 4; o++) tracker.track(p0, o);
    for (let o = 0; o < 3; o++) tracker.track(p1, o);
    tracker.ack(p0, 3);
    tracker.ack(p1, 0);
    assert.equal(tracker.inflight(), 5);
    assert.equal(tracker.inflight(p0), 3);
    assert.equal(tracker.inflight(p1), 2);
    assert.equal(tracker.inflight({ topic: 'other', partition: 0 }), 0);
  });

  void test('revoke returns the commit still owed, drops the in-flight records, and ignores their late acks', () => {
    const tracker = new CommitTracker();
    for (let o = 0; o < 6; o++) tracker.track(p0, o);
    tracker.track(p1, 0);
    tracker.ack(p0, 0);
    assert.deepEqual(tracker.committable(), [{ topic: 't', partition: 0, offset: 1 }]);
    tracker.ack(p0, 1);
    tracker.ack(p0, 2);
    tracker.ack(p0, 4);
    assert.deepEqual(tracker.revoke(p0), { topic: 't', partition: 0, offset: 3 });
    assert.equal(tracker.inflight(), 1);
    assert.equal(tracker.inflight(p0), 0);
    assert.equal(tracker.ack(p0, 3), false);
    assert.deepEqual(tracker.committable(), []);
    assert.deepEqual(tracker.tracked(), [p1]);
    // Nothing new since the last report: nothing owed.
    tracker.ack(p1, 0);
    tracker.committable();
    assert.equal(tracker.revoke(p1), undefined);
    assert.equal(tracker.revoke(p1), undefined);
    // A reassigned partition starts over, at any offset.
    tracker.track(p0, 2);
    tracker.ack(p0, 2);
    assert.deepEqual(tracker.committable(), [{ topic: 't', partition: 0, offset: 3 }]);
  });

  void test('many partitions commit independently, reporting only those that moved', () => {
    const tracker = new CommitTracker();
    const partitions = Array.from({ length: 100 }, (_, i): TopicPartition => ({ topic: i % 2 === 0 ? 'a' : 'b', partition: i }));
    for (const tp of partitions) for (let o = 0; o < 1000; o++) tracker.track(tp, o);
    assert.equal(tracker.inflight(), 100_000);
    partitions.forEach((tp, i) => {
      for (let o = 0; o < i; o++) tracker.ack(tp, o);
    });
    const commits = tracker.committable();
    assert.equal(commits.length, 99);
    for (const { topic, partition, offset } of commits) {
      assert.equal(topic, partition % 2 === 0 ? 'a' : 'b');
      assert.equal(offset, partition);
    }
    for (let o = 0; o < 1000; o++) tracker.ack({ topic: 'b', partition: 7 }, o);
    assert.deepEqual(tracker.committable(), [{ topic: 'b', partition: 7, offset: 1000 }]);
  });

  void test('property: with random gaps and ack order, a commit never passes an unacked offset and ends at last + 1', () => {
    for (let seed = 1; seed <= 25; seed++) {
      const random = createRandom(seed);
      const tracker = new CommitTracker();
      const tracked: number[] = [];
      const acked = new Set<number>();
      let offset = random.int(0, 1000);
      const count = random.int(1, 3000);
      let committed = -1;
      const pending: number[] = [];
      // Commits only move forward, so each tracked offset needs checking once, when a commit first passes it.
      let passed = 0;
      const checkCommit = (): void => {
        for (const commit of tracker.committable()) {
          assert.ok(commit.offset > committed, `seed ${seed}: commits only move forward`);
          committed = commit.offset;
          for (; passed < tracked.length && (tracked[passed] ?? Infinity) < committed; passed++) {
            assert.ok(acked.has(tracked[passed] ?? -1), `seed ${seed}: ${committed} passes unacked ${tracked[passed]}`);
          }
          const next = tracked[passed];
          // And it goes as far as it may: the first tracked offset it does not pass is still unacked.
          assert.ok(next === undefined || !acked.has(next), `seed ${seed}: commit ${committed} stops short of acked ${next}`);
        }
      };
      // Tracking and acking interleave, as records enter while earlier ones finish.
      while (tracked.length < count || pending.length > 0) {
        if (tracked.length < count && (pending.length === 0 || random.chance(0.55))) {
          offset += random.chance(0.2) ? random.int(2, 50) : 1;
          tracker.track(p0, offset);
          tracked.push(offset);
          pending.push(offset);
        } else {
          const index = random.int(0, pending.length - 1);
          const [o] = pending.splice(index, 1);
          if (o === undefined) continue;
          assert.equal(tracker.ack(p0, o), true);
          acked.add(o);
          if (random.chance(0.3)) checkCommit();
        }
        assert.equal(tracker.inflight(p0), pending.length);
      }
      checkCommit();
      assert.equal(committed, (tracked.at(-1) ?? 0) + 1, `seed ${seed}: ends at last + 1`);
    }
  });
});
