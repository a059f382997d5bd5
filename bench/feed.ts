/**
 * A steady feed of generated transactions into a topic, for `verdict generate` (the compose file's load).
 *
 * Open loop on the clock: every tick, what has fallen due since the start (`rate` × elapsed) is sent as one
 * produce round. One round is in flight at a time; while it is, due events accumulate as a count, not as
 * records, so a slow or unreachable broker costs no memory, and the next round catches up (at most
 * `maxBatch` events a round). A round the producer rejects is logged and counted, and the feed goes on:
 * a generator outlives a broker's hiccup instead of crashing its container.
 */
import type { SchedulerAction, Subscription } from 'rxjs';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { ProducerLike } from '../streams/kafka/kafka-client.js';
import { EventPool, headerList } from './events.js';

export interface FeedOptions {
  /** Connected by the caller; the feed only sends. */
  readonly producer: ProducerLike;
  readonly topic: string;
  /** Events per second offered. */
  readonly rate: number;
  /** Stop after offering this many events (sent or failed). Default: run until `stop()`. */
  readonly count?: number;
  /** Prefix of every event's id; distinct per run, so ids do not repeat across runs. */
  readonly idPrefix: string;
  readonly seed: number;
  /** Share of fraud events, 0..1 (the generator's default 0.02). */
  readonly fraudRate?: number;
  /** Share of malformed records, 0..1 (EventPool's default 0.001), to show the dead-letter path. */
  readonly poisonRate?: number;
  readonly clock: Clock;
  /** ms between rounds. Default 100. */
  readonly tickMs?: number;
  /** Most events in one round, when catching up. Default 5000. */
  readonly maxBatch?: number;
  readonly logger: Logger;
}

export interface FeedReport {
  /** Events the broker acknowledged. */
  readonly sent: number;
  /** Events of rounds the producer rejected. Not retried: this is load, not data anyone is owed. */
  readonly failed: number;
}

export interface Feed {
  /** Resolves once `count` events are offered, or after `stop()`, when the round in flight has settled. */
  readonly done: Promise<FeedReport>;
  stop(): void;
}

export function startFeed(options: FeedOptions): Feed {
  const { producer, topic, rate, clock, logger } = options;
  const tickMs = options.tickMs ?? 100;
  const maxBatch = options.maxBatch ?? 5_000;
  const limit = options.count ?? Number.POSITIVE_INFINITY;
  const events = new EventPool({
    seed: options.seed,
    ...(options.fraudRate === undefined ? {} : { fraudRate: options.fraudRate }),
    ...(options.poisonRate === undefined ? {} : { poisonRate: options.poisonRate }),
  }).sequence(options.idPrefix);
  const start = clock.now();
  let sent = 0;
  let failed = 0;
  /** The round in flight, if any: at most one, so a slow broker slows the feed instead of queueing records. */
  let inFlight: Promise<void> | null = null;
  let stopped = false;
  let finish: (report: FeedReport) => void = () => undefined;
  const done = new Promise<FeedReport>((resolve) => (finish = resolve));

  const end = (): void => {
    stopped = true;
    timer.unsubscribe();
    void (inFlight ?? Promise.resolve()).then(() => finish({ sent, failed }));
  };
  const round = (n: number): Promise<void> => {
    const records = events.take(n).map((e) => ({ topic, key: e.key, value: e.value, headers: headerList(e) }));
    return producer.sendBatch([{ topic, records }]).then(
      () => { sent += n; },
      (err: unknown) => {
        failed += n;
        logger.warn({ err, events: n, topic }, 'generate: produce round failed');
      },
    );
  };
  const tick = (): void => {
    if (stopped || inFlight !== null) return;
    const due = Math.min(limit, Math.floor((rate * (clock.now() - start)) / 1000));
    const n = Math.min(due - events.taken, maxBatch);
    if (n <= 0) return;
    inFlight = round(n).finally(() => {
      inFlight = null;
      if (events.taken >= limit) end();
    });
  };
  // Rescheduling may hand back a new subscription (it does on virtual clocks): keep the latest to cancel it.
  let timer: Subscription = clock.schedule(function work(this: SchedulerAction<undefined>) {
    tick();
    if (!stopped && events.taken < limit) timer = this.schedule(undefined, tickMs);
  }, tickMs);

  return {
    done,
    stop: () => {
      if (!stopped) end();
    },
  };
}
