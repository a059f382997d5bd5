/**
 * Daemons as real processes: `node dist/cli/main.js run --config <tmp yaml>`, each on its own topics (a copy
 * of the sample pipeline pointing at them) and group, with its JSON log on stderr parsed as it arrives.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { DaemonConfigInput } from '../../../config/daemon-schema.js';
import type { ProducerClient } from '../../../config/kafka-options.js';
import { defaultPipelinePath, packageRoot } from '../../../core/paths.js';
import { MOCK_CONSUMER_TIMINGS } from '../../../mock-kafka/mock-broker.js';
import type { Topics } from './kafka-io.js';

const cli = resolve(packageRoot, 'dist/cli/main.js');
type LogLevel = NonNullable<NonNullable<DaemonConfigInput['log']>['level']>;

export interface DaemonFilesOptions {
  readonly bootstrap: readonly string[];
  readonly groupId: string;
  readonly topics: Topics;
  /** Merged over the `kafka` block (after the mock timings). */
  readonly kafka?: Record<string, unknown>;
  /** `kafka.producer.client` (merged into `kafka.producer`); absent: the daemon's default (kafkajs). */
  readonly producer?: ProducerClient;
  readonly stream?: Record<string, number>;
  readonly drainTimeoutMs?: number;
  /** Default info: the tests read lifecycle, assignment and drain lines. */
  readonly logLevel?: string;
  /** Changes to the pipeline file (the sample on the test's topics) before it is written. */
  readonly editPipeline?: (pipeline: Record<string, unknown> & { models: Record<string, unknown> }) => void;
  /** Merged over the `crashJournal` block, whose `dir` is the config's own directory's `crash-journal` (not the working directory). */
  readonly crashJournal?: Record<string, unknown>;
}

/** Writes a pipeline (the sample, on the test's topics) and a daemon config; returns the config's path. */
export function writeDaemonConfig(options: DaemonFilesOptions): string {
  const { dir, config } = daemonConfigObject(options);
  const configPath = join(dir, 'daemon.yaml');
  writeFileSync(configPath, stringifyYaml(config));
  return configPath;
}

/**
 * Writes the pipeline (the sample, on the test's topics) into a fresh directory and returns that directory
 * and the daemon config as an object (the YAML file's shape), its `pipeline` the absolute path.
 */
export function daemonConfigObject(options: DaemonFilesOptions): { dir: string; config: DaemonConfigInput } {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-daemon-'));
  const pipeline = parseYaml(readFileSync(defaultPipelinePath, 'utf8')) as {
    input: { topic: string }; output: { topic: string; deadLetter: string }; models: { registry: string };
  };
  pipeline.input.topic = options.topics.input;
  pipeline.output.topic = options.topics.output;
  pipeline.output.deadLetter = options.topics.dlq;
  pipeline.models.registry = resolve(packageRoot, 'models/registry');
  // The mock cannot create the changelog through kafkajs: the one the test created (kafka-io.ts createTopics).
  const state = (pipeline as { state?: { changelogTopic?: string } }).state;
  if (state !== undefined && options.topics.changelog !== undefined) state.changelogTopic = options.topics.changelog;
  options.editPipeline?.(pipeline);
  const pipelinePath = join(dir, 'pipeline.yaml');
  writeFileSync(pipelinePath, stringifyYaml(pipeline));
  const config: DaemonConfigInput = {
    pipeline: pipelinePath,
    kafka: {
      brokers: [...options.bootstrap],
      clientId: `verdict-${options.groupId}`,
      groupId: options.groupId,
      fromBeginning: true,
      ...MOCK_CONSUMER_TIMINGS,
      connectionTimeout: 1_000,
      requestTimeout: 10_000,
      ...options.kafka,
      ...(options.producer === undefined ? {} : { producer: { ...(options.kafka?.['producer'] as object | undefined), client: options.producer } }),
    },
    stream: options.stream ?? {},
    shutdown: { drainTimeoutMs: options.drainTimeoutMs ?? 20_000 },
    metrics: { port: 0, host: '127.0.0.1' },
    log: { level: (options.logLevel ?? 'info') as LogLevel },
    crashJournal: { dir: join(dir, 'crash-journal'), ...options.crashJournal },
  };
  return { dir, config };
}

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const WARN = 40;

/** One daemon process. `start` resolves once it printed `verdict running metrics=<port>`. */
export class DaemonProcess {
  readonly name: string;
  readonly logs: LogLine[] = [];
  /** stderr lines that are not JSON (a crash trace). */
  readonly rawErrors: string[] = [];
  /** Every byte written to stdout and to stderr, as it arrived (what a secret-leak search reads). */
  readonly stdout: Buffer[] = [];
  readonly stderr: Buffer[] = [];
  readonly exited: Promise<Exit>;
  metricsPort = 0;
  #exit: Exit | undefined;
  readonly #child: ChildProcess;

  private constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.#child = child;
    this.exited = new Promise((done) => child.once('exit', (code, signal) => {
      this.#exit = { code, signal };
      done(this.#exit);
    }));
    child.stdout?.on('data', (chunk: Buffer) => this.stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.stderr.push(chunk));
    if (child.stderr !== null) {
      createInterface({ input: child.stderr }).on('line', (line) => {
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.rawErrors.push(line);
        }
      });
    }
  }

  /**
   * Spawns `verdict run` without waiting for it to run (a daemon expected to fail, or to be watched from its
   * first line). `env`: `VERDICT_*` overrides and the like, added to the tests' environment minus its own
   * `VERDICT_*` variables. `cliPath`: another build's `dist/cli/main.js` (default this package's).
   */
  static launch(configPath: string, name: string, env: Readonly<Record<string, string>> = {}, cliPath = cli): DaemonProcess {
    const child = spawn(process.execPath, [cliPath, 'run', '--config', configPath, '--env-file', '/dev/null'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // The tests' own environment must not leak config overrides into the daemon.
      env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VERDICT_'))), ...env },
    });
    return new DaemonProcess(name, child);
  }

  static async start(
    configPath: string, name: string, timeoutMs = 30_000, env: Readonly<Record<string, string>> = {}, cliPath = cli,
  ): Promise<DaemonProcess> {
    const daemon = DaemonProcess.launch(configPath, name, env, cliPath);
    const stdout = daemon.#child.stdout;
    if (stdout === null) throw new Error(`${name}: no stdout pipe`);
    const running = new Promise<number>((resolveRunning, rejectRunning) => {
      createInterface({ input: stdout }).on('line', (line) => {
        const m = /^verdict running metrics=(\d+)$/.exec(line);
        if (m !== null) resolveRunning(Number(m[1]));
      });
      void daemon.exited.then((exit) => rejectRunning(new Error(`${name} exited before running (${JSON.stringify(exit)}): ${daemon.describeErrors()}`)));
    });
    const timeout = sleep(timeoutMs, 'timeout' as const, { ref: false });
    const port = await Promise.race([running, timeout]);
    if (port === 'timeout') {
      daemon.#child.kill('SIGKILL');
      throw new Error(`${name} not running within ${timeoutMs} ms: ${daemon.describeErrors()}`);
    }
    daemon.metricsPort = port;
    return daemon;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get alive(): boolean {
    return this.#exit === undefined;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.alive) this.#child.kill(signal);
  }

  /** SIGTERM and wait for the exit (the drain is bounded by the daemon's own drain timeout). */
  async stop(timeoutMs = 30_000): Promise<Exit> {
    this.signal('SIGTERM');
    const result = await Promise.race([this.exited, sleep(timeoutMs, 'timeout' as const, { ref: false })]);
    if (result === 'timeout') {
      this.signal('SIGKILL');
      throw new Error(`${this.name} did not exit within ${timeoutMs} ms of SIGTERM; last log lines:\n${this.tail(25)}\n${this.rawErrors.slice(-30).join('\n')}`);
    }
    return result;
  }

  /** SIGKILL (a crash) and wait for the exit. */
  async kill(): Promise<Exit> {
    this.signal('SIGKILL');
    return this.exited;
  }

  /** Waits for a log line matching `match`, counting from `from` (an index into `logs`). */
  async waitForLog(match: (line: LogLine) => boolean, what: string, timeoutMs = 30_000, from = 0): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.logs.slice(from).find(match);
      if (found !== undefined) return found;
      if (!this.alive) throw new Error(`${this.name} exited while waiting for ${what}: ${this.describeErrors()}`);
      if (Date.now() > deadline) throw new Error(`${this.name}: no ${what} within ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  /** The partitions of the latest 'partitions assigned' line after the latest revoke, or [] if revoked since. */
  currentAssignment(topic: string): number[] {
    for (let i = this.logs.length - 1; i >= 0; i--) {
      const line = this.logs[i]!;
      if (line.msg === 'partitions revoked') return [];
      if (line.msg === 'partitions assigned') {
        const assignment = line['assignment'] as Record<string, number[]> | undefined;
        return [...(assignment?.[topic] ?? [])].sort((a, b) => a - b);
      }
    }
    return [];
  }

  async scrapeMetrics(): Promise<string> {
    const response = await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`);
    if (!response.ok) throw new Error(`${this.name} /metrics answered ${response.status}`);
    return response.text();
  }

  /** The last log lines, one per line, for failure messages. */
  tail(lines: number): string {
    return this.logs.slice(-lines).map((l) => {
      const { level, msg, time, pid: _pid, hostname: _host, name: _name, ...rest } = l;
      return `${String(time)} ${level} ${msg} ${JSON.stringify(rest)}`;
    }).join('\n');
  }

  /** Warnings and errors, and non-JSON stderr, for assertion messages. */
  describeErrors(): string {
    const bad = this.logs.filter((l) => l.level >= WARN).slice(-10).map((l) => JSON.stringify(l));
    return [...bad, ...this.rawErrors.slice(-20)].join('\n') || '(no warnings)';
  }
}

/** Sum of a counter over its label sets, from Prometheus text. */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
