/**
 * A caller's handle on rows it may give up on before they run: the model actor's cancellation token.
 *
 * The router's step executor makes one per block per step, on the hot path. An AbortController there cost a
 * quarter of a second of CPU per 26,000 events in a block worker (its EventTarget, plus the GC work of
 * AbortSignal's weak listeners), measured with `--cpu-prof` under `verdict bench --rates 4000`; this is a
 * plain object with one listener slot. Callers with an AbortSignal (the programmatic API) convert it with
 * `Withdrawal.from`.
 */
export class Withdrawal {
  #withdrawn = false;
  #reason: unknown;
  #listener: (() => void) | undefined;

  /** A withdrawal that follows `signal`: withdrawn when it aborts (at once if it already has). */
  static from(signal: AbortSignal): Withdrawal {
    const withdrawal = new Withdrawal();
    if (signal.aborted) withdrawal.withdraw(signal.reason);
    else signal.addEventListener('abort', () => withdrawal.withdraw(signal.reason), { once: true });
    return withdrawal;
  }

  get withdrawn(): boolean {
    return this.#withdrawn;
  }

  /** What `withdraw` was given: the cause of the rows' AbortedError. */
  get reason(): unknown {
    return this.#reason;
  }

  /** Gives up on the rows not yet dispatched; later calls do nothing. */
  withdraw(reason: unknown): void {
    if (this.#withdrawn) return;
    this.#withdrawn = true;
    this.#reason = reason;
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.();
  }

  /** The one listener (the actor's), run once on `withdraw`; `undefined` removes it. */
  onWithdraw(listener: (() => void) | undefined): void {
    this.#listener = listener;
  }
}
