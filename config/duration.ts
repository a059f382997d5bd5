/**
 * Durations in the pipeline file: `<whole number><unit>`, unit `ms`, `s`, `m`, `h` or `d` (`90s`, `1h`,
 * `7d`). Written by hand because none of the project's dependencies reads them, and the format is one line
 * of regular expression: no fractions, no compound forms (`1h30m`: write `90m`), no months (not a fixed length).
 */
const DURATION = /^([0-9]+)(ms|s|m|h|d)$/;

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * The duration in milliseconds, or a sentence saying why `text` is not one (to be prefixed with its config
 * path): not of the form above, or beyond 2^53 ms, where a JS number stops being exact.
 */
export function parseDuration(text: string): { ms: number } | { problem: string } {
  const m = DURATION.exec(text);
  if (m === null) return { problem: `"${text}" is not a duration: write a whole number and a unit (ms, s, m, h, d), e.g. 90s, 1h, 7d` };
  const ms = Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? Number.NaN);
  if (!Number.isSafeInteger(ms)) return { problem: `"${text}" is too long a duration` };
  return { ms };
}

/** A duration in milliseconds as the shortest exact text: 3_600_000 → `1h`, 90_000 → `90s`, 1_500 → `1500ms`. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit]!;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
