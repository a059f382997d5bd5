/** What the report records about where it ran: results mean little without the machine and the commit. */
import { execFileSync } from 'node:child_process';
import { cpus, freemem, loadavg, platform, release, arch, totalmem } from 'node:os';
import { packageRoot } from '../core/paths.js';

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cpuCount: number;
  readonly memoryBytes: number;
  readonly freeMemoryBytes: number;
  readonly node: string;
  readonly v8: string;
  readonly os: string;
  /** 1, 5 and 15 minute load averages when the run started: other work on the machine shows here. */
  readonly loadAverage: readonly number[];
}

export interface GitInfo {
  readonly commit: string | null;
  /** Uncommitted changes (untracked files included) in the working tree when the run started. */
  readonly dirty: boolean | null;
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cpuCount: list.length,
    memoryBytes: totalmem(),
    freeMemoryBytes: freemem(),
    node: process.version,
    v8: process.versions.v8,
    os: `${platform()} ${release()} ${arch()}`,
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

export function gitInfo(cwd: string = packageRoot): GitInfo {
  const git = (...args: string[]): string | null => {
    try {
      return execFileSync('git', args, { cwd, stdio: ['ignore', 'pipe', 'ignore'], timeout: 5_000 }).toString().trim();
    } catch {
      return null;
    }
  };
  const commit = git('rev-parse', 'HEAD');
  const status = commit === null ? null : git('status', '--porcelain');
  return { commit, dirty: status === null ? null : status.length > 0 };
}
