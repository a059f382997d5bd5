/**
 * Holds a partition's blocks until its state is restored (README "Per-key state": no record of a partition
 * is processed before its state is), then lets them start in the order they arrived. A partition revoked
 * before its restore ends has its waiting blocks abandoned: they never start, and their records are read
 * again by the partition's next owner.
 */
import type { TopicPartition } from '../../pipeline/record.js';

interface Gate {
  /** Resolves true once restored, false when abandoned. */
  readonly restored: Promise<boolean>;
  /** Blocks chained on `restored` that have not started yet. */
  waiting: number;
  abandon: () => void;
}

const tpKey = (tp: TopicPartition): string => `${tp.topic}\u0000${tp.partition}`;

export class RestoreGate {
  readonly #gates = new Map<string, Gate>();

  /** Closes the partition's gate until `restored` resolves (true: open; false or a rejection: abandon). */
  close(tp: TopicPartition, restored: Promise<boolean>): void {
    const key = tpKey(tp);
    let abandon = (): void => undefined;
    const done = new Promise<boolean>((resolve) => {
      abandon = () => resolve(false);
      restored.then(resolve, () => resolve(false));
    });
    const gate: Gate = { restored: done, waiting: 0, abandon };
    this.#gates.set(key, gate);
    // Registered before any block's continuation, so it runs first: with no block waiting the gate opens
    // here; otherwise the last waiting block opens it once it has started, so a block arriving meanwhile
    // still queues behind the ones before it.
    void done.then(() => {
      if (gate.waiting === 0 && this.#gates.get(key) === gate) this.#gates.delete(key);
    });
  }

  /** Abandons the partition's gate, if closed: its waiting blocks resolve `undefined` without starting. */
  abandon(tp: TopicPartition): void {
    const gate = this.#gates.get(tpKey(tp));
    if (gate === undefined) return;
    this.#gates.delete(tpKey(tp));
    gate.abandon();
  }

  /** Whether any partition is still waiting for its state. */
  get restoring(): boolean {
    return this.#gates.size > 0;
  }

  /** Starts `start` now when the partition's gate is open, else once it opens; `undefined` when abandoned. */
  run<T>(tp: TopicPartition, start: () => Promise<T>): Promise<T | undefined> {
    const key = tpKey(tp);
    const gate = this.#gates.get(key);
    if (gate === undefined) return start();
    gate.waiting++;
    return gate.restored.then((ok) => {
      gate.waiting--;
      if (gate.waiting === 0 && this.#gates.get(key) === gate) this.#gates.delete(key);
      return ok ? start() : undefined;
    });
  }
}
