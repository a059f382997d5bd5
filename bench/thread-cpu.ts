/**
 * The CPU time of this process's main thread alone (Linux): the thread that runs JavaScript, where a Kafka
 * client's per-record work competes with everything else Verdict does. `process.cpuUsage()` counts every
 * thread (libuv's pool, V8's GC helpers, librdkafka's own threads, Verdict's workers); the main thread's share
 * is what bounds the event loop.
 *
 * Read from /proc/self/task/<pid>/stat (the main thread's id is the process id): fields 14 and 15, utime and
 * stime, in clock ticks (`getconf CLK_TCK`, read once; 100 when it cannot be read, the value on every Linux
 * architecture Node runs on). A tick is 10 ms at 100 Hz: over a 2 s level that is a resolution of 0.5% of a core.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** utime and stime of one /proc stat line, in clock ticks. */
export interface TaskTicks {
  readonly utime: number;
  readonly stime: number;
}

/**
 * Parses a /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat line. The second field, the command name, is in
 * parentheses and may itself contain spaces and parentheses, so the fields are counted from the last `)`.
 * Returns null for a line that does not have them.
 */
export function parseTaskStat(line: string): TaskTicks | null {
  const close = line.lastIndexOf(')');
  if (close < 0) return null;
  // After the command: field 3 (state) onwards; utime is field 14, stime field 15.
  const fields = line.slice(close + 1).trim().split(/\s+/);
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  if (!Number.isSafeInteger(utime) || !Number.isSafeInteger(stime) || utime < 0 || stime < 0) return null;
  return { utime, stime };
}

/** The value assumed when `getconf CLK_TCK` cannot be run (USER_HZ on every Linux architecture Node supports). */
export const DEFAULT_CLOCK_TICKS = 100;

let ticksPerSecond: number | undefined;

/** Clock ticks per second, read once per process. */
export function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      ticksPerSecond = Number.isInteger(n) && n > 0 ? n : DEFAULT_CLOCK_TICKS;
    } catch {
      ticksPerSecond = DEFAULT_CLOCK_TICKS;
    }
  }
  return ticksPerSecond;
}

/** CPU time (user + system, µs) the main thread has used so far; null where /proc cannot tell (not Linux). */
export function mainThreadCpuUs(): number | null {
  let line: string;
  try {
    line = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const ticks = parseTaskStat(line);
  return ticks === null ? null : ((ticks.utime + ticks.stime) * 1e6) / clockTicks();
}
