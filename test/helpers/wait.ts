/** Polling helpers for tests that watch a real broker or process. */
import { setTimeout as sleep } from 'node:timers/promises';

/** Resolves once `condition()` holds; rejects after `timeoutMs`, naming what it waited for. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** The integers from `from` (included) to `to` (excluded). */
export const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
