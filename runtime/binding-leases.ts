/**
 * Which model bindings blocks in flight still use. A block takes a lease on the bindings current when it is
 * handed to processing and gives it back when its outcomes are in; an old version may be unloaded only when
 * no leased generation (and not the current one) uses it (runtime/live-models.ts).
 */
import type { ModelBindings } from '../pipeline/route/bindings.js';

/** A block's hold on the bindings it runs: `release()` once, when the block's outcomes are in. */
export interface BindingLease {
  readonly bindings: ModelBindings;
  release(): void;
}

export class BindingLeases {
  /** Generations with blocks in flight: their bindings and how many blocks hold them. */
  readonly #held = new Map<number, { readonly bindings: ModelBindings; count: number }>();
  readonly #onIdle: () => void;

  /** `onIdle` runs whenever the last block of a generation gives its lease back. */
  constructor(onIdle: () => void) {
    this.#onIdle = onIdle;
  }

  /** A lease on `bindings`; release it exactly once (later calls are ignored). */
  take(bindings: ModelBindings): BindingLease {
    const held = this.#held.get(bindings.generation);
    if (held === undefined) this.#held.set(bindings.generation, { bindings, count: 1 });
    else held.count++;
    let released = false;
    return {
      bindings,
      release: () => {
        if (released) return;
        released = true;
        const entry = this.#held.get(bindings.generation);
        if (entry === undefined) return;
        if (--entry.count > 0) return;
        this.#held.delete(bindings.generation);
        this.#onIdle();
      },
    };
  }

  /** Blocks in flight, by generation. */
  get inflight(): ReadonlyMap<number, number> {
    return new Map([...this.#held].map(([generation, { count }]) => [generation, count]));
  }

  /** The bindings of every generation with a block in flight. */
  held(): ModelBindings[] {
    return [...this.#held.values()].map((h) => h.bindings);
  }
}
