/**
 * A real Kafka-protocol broker for tests: librdkafka's mock cluster (mock-kafka/launcher/mock_cluster.c),
 * spawned as a child process and driven by line commands over its stdin.
 *
 * Quirks of the librdkafka 2.0.2 mock that tests must design around:
 * - It reports controller id 0, a broker that does not exist, so kafkajs admin.createTopics and the
 *   idempotent producer fail ("Broker 0 not found in the cached metadata"). Create topics with
 *   `createTopic` (the mock's own API) and use a plain, non-idempotent producer.
 * - Setting a broker down does not move partition leadership; clients retry until it is up again.
 * - It keeps only the newest 5 MiB of record batches per partition (max_size in
 *   rd_kafka_mock_partition_init; its 100k-batch max_cnt cannot bind first), read or not: a consumer further
 *   behind finds its records deleted (bench/retention.ts has the measurement).
 */
import { spawn, execFileSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { packageRoot } from '../core/paths.js';

const buildScript = resolve(packageRoot, 'scripts/build-mock-broker.sh');
const binary = resolve(packageRoot, 'mock-kafka/launcher/mock-cluster');

/** Kafka protocol request types, for error injection. */
export const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
} as const;

/** Kafka protocol error codes the tests inject. */
export const KafkaErrorCode = {
  NOT_LEADER_OR_FOLLOWER: 6,
  REQUEST_TIMED_OUT: 7,
  NETWORK_EXCEPTION: 13,
  COORDINATOR_NOT_AVAILABLE: 15,
  NOT_COORDINATOR: 16,
  /** librdkafka's internal _TRANSPORT: the mock closes the connection instead of answering. */
  TRANSPORT: -195,
} as const;

/**
 * kafkajs consumer timings that make group joins as quick as the 2.0.2 mock allows. The mock holds the
 * first JoinGroup of an empty group for a fixed ~3 s (its group.initial.rebalance.delay), and expires a
 * member whose session runs out meanwhile, so sessionTimeout must stay well above 3 s or the join never
 * completes (kafkajs then waits out its request timeout). A rejoin after members left is held for
 * sessionTimeout - 1 s, so 4 s keeps that at ~3 s too.
 */
export const MOCK_CONSUMER_TIMINGS = {
  sessionTimeout: 4_000,
  rebalanceTimeout: 4_000,
  heartbeatInterval: 200,
  maxWaitTimeInMs: 100,
} as const;

export interface MockBrokerOptions {
  /** Broker count; ids run from 1 to this. Default 3. */
  readonly brokers?: number;
  /** Topics created before the promise resolves. Replication defaults to min(brokers, 3). */
  readonly topics?: ReadonlyArray<{ readonly name: string; readonly partitions: number; readonly replication?: number }>;
  /** How long to wait for the launcher to report READY. Default 10 s. */
  readonly readyTimeoutMs?: number;
}

export interface MockBroker {
  /** host:port of every broker, in broker-id order. */
  readonly bootstrap: readonly string[];
  readonly brokerIds: readonly number[];
  createTopic(name: string, partitions: number, replication?: number): Promise<void>;
  /** Closes the broker's connections and refuses new ones. Leadership does not move. */
  setBrokerDown(brokerId: number): Promise<void>;
  setBrokerUp(brokerId: number): Promise<void>;
  /** The next `errors.length` requests of `apiKey`, to any broker, fail with these codes in order. */
  pushRequestErrors(apiKey: number, errors: readonly number[]): Promise<void>;
  /** The next `count` requests of `apiKey` to one broker fail with `error` (0 for none) after `rttMs`. */
  pushBrokerRequestErrors(brokerId: number, apiKey: number, count: number, error: number, rttMs?: number): Promise<void>;
  clearRequestErrors(apiKey: number): Promise<void>;
  /** Delays every response of the broker (-1: all brokers) by `ms`. */
  setRtt(brokerId: number, ms: number): Promise<void>;
  setLeader(topic: string, partition: number, brokerId: number): Promise<void>;
  setCoordinator(kind: 'group' | 'transaction', key: string, brokerId: number): Promise<void>;
  /** Stops the cluster and waits for the process to exit. Safe to call twice. */
  stop(): Promise<void>;
}

/** A failed launcher command or start; `reply` is the launcher's ERR line, when there was one. */
export class MockBrokerError extends Error {
  constructor(message: string, readonly reply?: string) {
    super(message);
    this.name = 'MockBrokerError';
  }
}

/** A topic name no other test (or earlier run against the same cluster) uses. */
export function uniqueTopic(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

let built = false;

/** Builds the launcher once per process; the script itself is a no-op when the binary is current. */
function ensureBuilt(): void {
  if (built) return;
  try {
    execFileSync('bash', [buildScript], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? '';
    throw new MockBrokerError(`building the mock broker failed: ${stderr || String(err)}`);
  }
  built = true;
}

// Children still alive when the test process exits are told to stop; they also exit on stdin EOF.
const live = new Set<ChildProcessWithoutNullStreams>();
let exitHookInstalled = false;
function track(child: ChildProcessWithoutNullStreams): void {
  if (!exitHookInstalled) {
    process.once('exit', () => {
      for (const c of live) c.kill('SIGTERM');
    });
    exitHookInstalled = true;
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}

interface Waiter {
  readonly command: string;
  readonly resolve: (reply: string) => void;
  readonly reject: (err: Error) => void;
}

export async function startMockBroker(options: MockBrokerOptions = {}): Promise<MockBroker> {
  const brokers = options.brokers ?? 3;
  if (!Number.isInteger(brokers) || brokers < 1 || brokers > 64) {
    throw new MockBrokerError(`brokers must be an integer in 1..64, got ${brokers}`);
  }
  ensureBuilt();
  const child = spawn(binary, [String(brokers)], { stdio: ['pipe', 'pipe', 'pipe'] });
  track(child);
  const broker = new LauncherConnection(child, options.readyTimeoutMs ?? 10_000);
  let bootstrap: string[];
  try {
    bootstrap = await broker.ready;
  } catch (err) {
    await broker.stop();
    throw err;
  }
  const replication = Math.min(brokers, 3);
  const api: MockBroker = {
    bootstrap,
    brokerIds: Array.from({ length: brokers }, (_, i) => i + 1),
    createTopic: (name, partitions, repl = replication) => broker.send(`topic ${name} ${partitions} ${repl}`),
    setBrokerDown: (id) => broker.send(`down ${id}`),
    setBrokerUp: (id) => broker.send(`up ${id}`),
    pushRequestErrors: (apiKey, errors) =>
      errors.length === 0 ? Promise.resolve() : broker.send(`err ${apiKey} ${errors.length} ${errors.join(' ')}`),
    pushBrokerRequestErrors: (id, apiKey, count, error, rttMs = 0) =>
      broker.send(`broker-err ${id} ${apiKey} ${count} ${error} ${rttMs}`),
    clearRequestErrors: (apiKey) => broker.send(`clear-err ${apiKey}`),
    setRtt: (id, ms) => broker.send(`rtt ${id} ${ms}`),
    setLeader: (topic, partition, id) => broker.send(`leader ${topic} ${partition} ${id}`),
    setCoordinator: (kind, key, id) => broker.send(`coordinator ${kind} ${key} ${id}`),
    stop: () => broker.stop(),
  };
  try {
    for (const t of options.topics ?? []) await api.createTopic(t.name, t.partitions, t.replication);
  } catch (err) {
    await broker.stop();
    throw err;
  }
  return api;
}

/**
 * The launcher speaks one reply line per command, in order, so a FIFO of waiters pairs replies with
 * commands. The child's handles are unref'd while nothing waits on it, so a test that forgets `stop()`
 * cannot hang the test process (the exit hook and stdin EOF then end the child).
 */
class LauncherConnection {
  readonly ready: Promise<string[]>;
  private readonly waiters: Waiter[] = [];
  private readonly stderrTail: string[] = [];
  private exited = false;
  private readonly exitedPromise: Promise<void>;

  constructor(private readonly child: ChildProcessWithoutNullStreams, readyTimeoutMs: number) {
    this.exitedPromise = new Promise((done) => child.once('exit', () => done()));
    createInterface({ input: child.stderr }).on('line', (line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > 20) this.stderrTail.shift();
    });
    // Writes after the child died raise EPIPE here; the exit handler already rejected the waiters.
    child.stdin.on('error', () => undefined);

    this.ready = new Promise<string[]>((resolveReady, rejectReady) => {
      let bootstrap: string[] | undefined;
      let started = false;
      const timer = setTimeout(
        () => rejectReady(new MockBrokerError(`mock broker not READY within ${readyTimeoutMs} ms${this.stderrHint()}`)),
        readyTimeoutMs,
      );
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (started) return this.onReply(line);
        if (line.startsWith('BOOTSTRAP ')) bootstrap = line.slice('BOOTSTRAP '.length).split(',');
        if (line !== 'READY') return;
        started = true;
        clearTimeout(timer);
        if (bootstrap === undefined) {
          rejectReady(new MockBrokerError('mock broker said READY without a BOOTSTRAP line'));
          return;
        }
        this.release();
        resolveReady(bootstrap);
      });
      child.once('exit', (code, signal) => {
        this.exited = true;
        clearTimeout(timer);
        const err = new MockBrokerError(`mock broker exited (code ${code}, signal ${signal})${this.stderrHint()}`);
        rejectReady(err);
        for (const w of this.waiters.splice(0)) w.reject(err);
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        rejectReady(new MockBrokerError(`cannot start mock broker: ${err.message}`));
      });
    });
    this.hold();
  }

  /** Sends one command; resolves with the text after OK, rejects with the ERR line. */
  send(command: string): Promise<void> {
    return this.request(command).then(() => undefined);
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const forced = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    try {
      // Closing stdin is enough: the launcher treats EOF as quit.
      this.hold();
      this.child.stdin.end();
      await this.exitedPromise;
    } finally {
      clearTimeout(forced);
    }
  }

  private request(command: string): Promise<string> {
    if (this.exited || this.child.stdin.writableEnded) {
      return Promise.reject(new MockBrokerError(`mock broker is stopped; cannot run '${command}'`));
    }
    if (/[\r\n]/.test(command)) return Promise.reject(new MockBrokerError(`command has a line break: '${command}'`));
    return new Promise<string>((resolveReply, rejectReply) => {
      if (this.waiters.length === 0) this.hold();
      this.waiters.push({ command, resolve: resolveReply, reject: rejectReply });
      this.child.stdin.write(`${command}\n`);
    });
  }

  private onReply(line: string): void {
    const waiter = this.waiters.shift();
    if (this.waiters.length === 0) this.release();
    if (waiter === undefined) return; // unsolicited output: nothing to pair it with
    if (line.startsWith('OK')) waiter.resolve(line.slice(2).trim());
    else waiter.reject(new MockBrokerError(`mock broker '${waiter.command}' failed: ${line.replace(/^ERR /, '')}`, line));
  }

  private hold(): void {
    this.child.ref();
    asSocket(this.child.stdout).ref();
  }

  private release(): void {
    this.child.unref();
    for (const stream of [this.child.stdin, this.child.stdout, this.child.stderr]) asSocket(stream).unref();
  }

  private stderrHint(): string {
    return this.stderrTail.length > 0 ? `: ${this.stderrTail.join(' | ')}` : '';
  }
}

/** Piped child stdio streams are sockets at run time; the typings only say Readable/Writable. */
function asSocket(stream: NodeJS.ReadableStream | NodeJS.WritableStream): Pick<Socket, 'ref' | 'unref'> {
  return stream as unknown as Socket;
}
