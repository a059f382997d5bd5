/**
 * A `ProducerLike` on librdkafka's native producer (@confluentinc/kafka-javascript), for throughput: it
 * costs the main thread a fraction of what kafkajs does per record (README "Choosing the producer").
 *
 * Acknowledgement is exact, record by record. Each record is produced with an opaque naming its round and
 * place, and librdkafka reports each record's delivery (`dr_cb`); a round resolves when every one of its
 * records has been reported. A report with an error the brokers give for records themselves (too large,
 * invalid) marks the record refused, and the others stand acknowledged: unlike kafkajs, nothing acknowledged
 * is sent twice to find out which. Since a broker refuses a whole record batch, each refused record is sent
 * again alone before it is reported (`#produceConfirmed`). Records that fail for another reason after
 * librdkafka's own retries (a delivery timeout, brokers away) are sent again, only they, with the `retries`
 * and backoff of the settings (`#retryFailed`); then the round fails (retryable unless only an operator can
 * cure it), and only then may the caller's retry of the whole round write records twice.
 * Measured against "errors only, and one flush() per round" (bench/micro/producer-acks.ts): a report per
 * record costs more CPU, but the binding hands error reports to the event loop on their own schedule, so a
 * flush can return before the report of a record it failed, and that record would count as written.
 *
 * Bytes stay exact where librdkafka would change them. The binding passes a zero-length Buffer to librdkafka
 * as a null pointer, which librdkafka writes as null: empty values, keys and header values are given as an
 * empty view into a non-empty buffer instead, which it writes as empty. A null header value cannot be given
 * at all, and librdkafka may split one partition's records of a round over produce requests; so a round with
 * a null header value, and a round that must land whole per partition (`SendBatchOptions.whole`: the state
 * changelog), go through a kafkajs producer kept beside it (`companion`). A round with a null header value
 * waits for the rounds before it and holds back those after it, so records keep their order. So does a
 * round that must not touch native code (`SendBatchOptions.avoidNative`: the dead letter of a record whose
 * output crashed this producer, runtime/crash-guard.ts).
 *
 * The `kafka.produce` failpoint (core/failpoints.ts) is checked right before each record goes to the native
 * produce(), where a native crash on a record would happen.
 */
import { ConfigError, RecordRejectedError, TransportError, asVerdictError, type VerdictError } from '../../core/errors.js';
import { failpoint, failpointArmed, holdsUtf8 } from '../../core/failpoints.js';
import { componentLogger, type Logger } from '../../core/log.js';
import { retry, RetryExhaustedError } from '../../core/retry.js';
import type { OutboundRecord } from '../../pipeline/record.js';
import type { KafkaConnection, ProducerLike, ProducerSettings, RefusedRecord, SendBatchOptions, TopicRecords } from './kafka-client.js';
import {
  LIBRDKAFKA_PACKAGE, loadLibrdkafka, type LibrdkafkaDeliveryReport, type LibrdkafkaError, type LibrdkafkaLoad, type LibrdkafkaProducerClient,
  type LibrdkafkaConfig, type LibrdkafkaModule,
} from './librdkafka-binding.js';
import { librdkafkaConfig } from './librdkafka-config.js';
import { forwardLog, LOG_ERR } from './librdkafka-log.js';
import { bytes, hasNullHeader, headersOf, subRound, type Place } from './librdkafka-records.js';
import { toLibrdkafkaProduceError, toLibrdkafkaTransportError } from './librdkafka-errors.js';

export interface LibrdkafkaProducerDeps {
  /** The kafkajs producer for what librdkafka cannot write exactly, and for everything when falling back. */
  readonly companion: ProducerLike;
  readonly logger: Logger;
  /** Loads the binding; default `loadLibrdkafka` (a test passes a load that finds nothing). */
  readonly load?: () => Promise<LibrdkafkaLoad>;
}

/** A round's records get opaques `round * ROUND_SPAN + place`: a round carries fewer records than this. */
const ROUND_SPAN = 2 ** 24;
/** librdkafka's ERR__QUEUE_FULL: `queue.buffering.max.messages` records wait for their reports. */
const QUEUE_FULL = -184;
const NOTHING_REFUSED: readonly RefusedRecord[] = Object.freeze([]);

/** How one round ended: the records refused for themselves, and those that failed for another reason. */
interface RoundOutcome {
  readonly refused: RefusedRecord[];
  readonly failed: Place[];
  /** The first failure that is not a record's own; undefined when every other record was acknowledged. */
  failure: TransportError | undefined;
}

interface Round extends RoundOutcome {
  readonly batch: readonly TopicRecords[];
  /** Records not yet reported. */
  pending: number;
  readonly resolve: (outcome: RoundOutcome) => void;
  readonly reject: (err: unknown) => void;
}

export class LibrdkafkaProducer implements ProducerLike {
  readonly #connection: KafkaConnection;
  readonly #settings: ProducerSettings;
  readonly #companion: ProducerLike;
  readonly #logger: Logger;
  /** librdkafka's own log, at `kafka.logLevel` (librdkafka-config.ts sets its log_level to match). */
  readonly #librdkafkaLogger: Logger;
  readonly #load: () => Promise<LibrdkafkaLoad>;
  #client: LibrdkafkaProducerClient | undefined;
  /** Not installed and `client: auto`: the companion does everything. */
  #fallback = false;
  #companionConnected: Promise<void> | undefined;
  readonly #rounds = new Map<number, Round>();
  #nextRound = 0;
  /** Settles when the rounds so far are over: an ordered round (null header values) waits for it. */
  #settled: Promise<unknown> = Promise.resolve();
  /** An ordered round in flight: later rounds wait for it. */
  #ordered: Promise<unknown> | undefined;
  /** The `kafka.produce` failpoint is set (read at connect: a malformed variable fails it with CONFIG_INVALID). */
  #faultArmed = false;
  /** The rounds' produce loops, one after the other (see #produceRound). */
  #queueing: Promise<void> = Promise.resolve();
  /** Rounds waiting for room in librdkafka's queue. */
  #roomWaiters: { readonly promise: Promise<void>; readonly resolve: () => void } | undefined;

  constructor(connection: KafkaConnection, settings: ProducerSettings, deps: LibrdkafkaProducerDeps) {
    this.#connection = connection;
    this.#settings = settings;
    this.#companion = deps.companion;
    this.#logger = componentLogger(deps.logger, 'librdkafka_producer');
    this.#librdkafkaLogger = componentLogger(deps.logger, 'librdkafka');
    this.#load = deps.load ?? loadLibrdkafka;
  }

  /**
   * Loads the binding and connects. Rejects with ConfigError when the binding is missing and the settings
   * demand it (`client: librdkafka`), the configuration cannot be expressed, or VERDICT_FAILPOINTS is
   * malformed; with TransportError when the brokers cannot be reached.
   */
  async connect(): Promise<void> {
    if (this.#client !== undefined || this.#fallback) return;
    this.#faultArmed = failpointArmed('kafka.produce');
    const loaded = await this.#load();
    if ('missing' in loaded) {
      if (this.#settings.client === 'librdkafka') {
        throw new ConfigError(`kafka.producer.client is librdkafka, but ${loaded.missing} (an optional dependency: README "Choosing the producer")`);
      }
      this.#logger.warn({ reason: loaded.missing }, `${LIBRDKAFKA_PACKAGE} unavailable: producing with kafkajs (kafka.producer.client: auto)`);
      this.#fallback = true;
      await this.#connectCompanion();
      return;
    }
    const { module } = loaded;
    const config = librdkafkaConfig(this.#connection, this.#settings);
    // Brokers away at start: tried again as kafkajs's producer tries its connect (`retries`, backoff from
    // initialRetryTime up to maxRetryTime), so both producers give a broker the same time to appear.
    const client = await retry(() => this.#connectOnce(module, config), {
      attempts: this.#settings.retries + 1,
      initialDelayMs: this.#settings.initialRetryTime,
      maxDelayMs: this.#settings.maxRetryTime,
      onRetry: (error, attempt, delayMs) => this.#logger.warn({ err: error.toJSON(), attempt, delayMs }, 'librdkafka producer connect failed; retrying'),
    }).catch((err: unknown) => { throw err instanceof RetryExhaustedError ? asVerdictError(err.cause) : err; });
    client.setPollInBackground(true);
    this.#client = client;
    this.#logger.info({ librdkafka: module.librdkafkaVersion }, 'librdkafka producer connected');
  }

  /**
   * One connect of a new client. librdkafka's own answer to a failed connect is a bare "broker transport
   * failure"; the reason (connection refused, a name that does not resolve, SASL refused) is in its log, so
   * the last broker failure it logged is added to the error.
   */
  async #connectOnce(module: LibrdkafkaModule, config: LibrdkafkaConfig): Promise<LibrdkafkaProducerClient> {
    const client = new module.Producer(config);
    let lastFailure: string | undefined;
    client.on('delivery-report', (err, report) => this.#reported(err, report));
    client.on('event.error', (err) => this.#logger.warn({ code: err.code, message: err.message }, 'librdkafka error'));
    client.on('event.log', (log) => {
      if (log.severity <= LOG_ERR) lastFailure = log.message.replace(/^\[thrd:[^\]]*\]: /, '');
      forwardLog(this.#librdkafkaLogger, this.#connection.logLevel, log);
    });
    await new Promise<void>((resolve, reject) => {
      client.connect({ timeout: this.#connection.connectionTimeout ?? 10_000 }, (err) => {
        if (err === null || err === undefined) resolve();
        // No disconnect here: the binding disconnects its native client itself when a connect fails (its
        // client.js `fail`), and its disconnect() of a client not connected throws inside this callback,
        // which killed the daemon. The next connect makes a new client.
        else {
          const reason = lastFailure === undefined ? '' : ` (${lastFailure})`;
          reject(toLibrdkafkaTransportError({ code: err.code, message: `${err.message}${reason}` }, 'producer connect failed'));
        }
      });
    });
    return client;
  }

  sendBatch(batch: readonly TopicRecords[], options: SendBatchOptions = {}): Promise<readonly RefusedRecord[]> {
    if (this.#fallback) return this.#companionSend(batch);
    // Whole rounds write the state changelog, a topic of their own: no order to keep with the others.
    if (options.whole === true) return this.#companionSend(batch);
    if (hasNullHeader(batch) || options.avoidNative === true) return this.#sendOrdered(batch);
    const ordered = this.#ordered;
    const sent = ordered === undefined ? this.#produceConfirmed(batch) : ordered.then(() => this.#produceConfirmed(batch));
    // An ordered round sent later waits for this one from now on, also while it is held back behind an
    // ordered round (it has produced nothing yet, but will before any later ordered round may).
    const settled = sent.then(() => undefined, () => undefined);
    this.#settled = Promise.allSettled([this.#settled, settled]);
    return sent;
  }

  /**
   * A round, its refusals confirmed record by record. librdkafka puts a partition's records into one record
   * batch, and a broker refuses a batch whole (MESSAGE_TOO_LARGE for a batch over the topic's
   * max.message.bytes; any refusal of a batch on a broker that does not name the record), so every record
   * of it is reported refused. Each refused record is sent again alone, one after the other: one the brokers
   * accept alone is written (it was not before: a refused batch is not appended), and only one refused again
   * is reported. Alone means in a round of its own; records of rounds in flight at the same time may still
   * share its batch, and are confirmed the same way in theirs.
   */
  async #produceConfirmed(batch: readonly TopicRecords[]): Promise<readonly RefusedRecord[]> {
    const first = await this.#produceRound(batch);
    const refused = [...first.refused];
    if (first.failure !== undefined) await this.#retryFailed(batch, first, refused);
    if (refused.length === 0) return NOTHING_REFUSED;
    const confirmed: RefusedRecord[] = [];
    for (const r of refused) {
      const again = await this.#produceRound([{ topic: batch[r.topicIndex]!.topic, records: [batch[r.topicIndex]!.records[r.recordIndex]!] }]);
      if (again.failure !== undefined) throw again.failure;
      if (again.refused.length > 0) confirmed.push({ ...r, error: again.refused[0]!.error });
    }
    return confirmed.length === 0 ? NOTHING_REFUSED : confirmed;
  }

  /**
   * Records that failed for the transport after librdkafka's own retries (a delivery timeout, brokers away)
   * are sent again, only they, as kafkajs retries a request (`retries`, backoff): the records of the round
   * already acknowledged are not written twice, as they would be if the caller sent the whole round again.
   * Rejects with the last failure when it is final or the retries run out; adds refusals met on the way.
   */
  async #retryFailed(batch: readonly TopicRecords[], first: RoundOutcome, refused: RefusedRecord[]): Promise<void> {
    const failure = first.failure;
    if (failure === undefined) return;
    if (!failure.retryable) throw failure;
    let failed = first.failed;
    await retry(async () => {
      const sub = subRound(batch, failed);
      const again = await this.#produceRound(sub.batch);
      const back = (p: Place): Place => sub.from[p.topicIndex]![p.recordIndex]!;
      for (const r of again.refused) refused.push({ ...back(r), error: r.error });
      failed = again.failed.map(back);
      if (again.failure !== undefined) throw again.failure;
    }, {
      attempts: Math.max(1, this.#settings.retries),
      initialDelayMs: this.#settings.initialRetryTime,
      maxDelayMs: this.#settings.maxRetryTime,
      onRetry: (error, attempt, delayMs) => this.#logger.warn({ err: error.toJSON(), records: failed.length, attempt, delayMs }, 'records not delivered; sending them again'),
    }).catch((err: unknown) => { throw err instanceof RetryExhaustedError ? asVerdictError(err.cause) : err; });
  }

  /** Through the companion, after every round before it, and before any after it. */
  #sendOrdered(batch: readonly TopicRecords[]): Promise<readonly RefusedRecord[]> {
    const run = Promise.allSettled([this.#settled, this.#ordered]).then(() => this.#companionSend(batch));
    const done = run.then(() => undefined, () => undefined);
    this.#ordered = done;
    this.#settled = done;
    void done.then(() => { if (this.#ordered === done) this.#ordered = undefined; });
    return run;
  }

  async #companionSend(batch: readonly TopicRecords[]): Promise<readonly RefusedRecord[]> {
    await this.#connectCompanion();
    return this.#companion.sendBatch(batch, { whole: true });
  }

  #connectCompanion(): Promise<void> {
    this.#companionConnected ??= this.#companion.connect().catch((err: unknown) => {
      this.#companionConnected = undefined;
      throw err;
    });
    return this.#companionConnected;
  }

  #produceRound(batch: readonly TopicRecords[]): Promise<RoundOutcome> {
    const client = this.#client;
    if (client === undefined) return Promise.reject(new TransportError('send before the producer connected', { retryable: true }));
    const count = batch.reduce((n, t) => n + t.records.length, 0);
    if (count >= ROUND_SPAN) return Promise.reject(new TransportError(`a produce round of ${count} records (at most ${ROUND_SPAN - 1})`, { retryable: false }));
    if (count === 0) return Promise.resolve({ refused: [], failed: [], failure: undefined });
    const id = this.#nextRound;
    this.#nextRound = (this.#nextRound + 1) % 2 ** 28;
    const sent = new Promise<RoundOutcome>((resolve, reject) => {
      this.#rounds.set(id, { batch, pending: count, refused: [], failed: [], failure: undefined, resolve, reject });
    });
    // Rounds are queued one after the other: one waiting for room in librdkafka's queue holds back the rounds
    // after it, so a partition's records are queued (and written) in the order they were sent.
    this.#queueing = this.#queueing.then(() => this.#produceFrom(client, id, 0, 0)).catch((err: unknown) => {
      // Not a record's failure (those are settled in the loop): the round fails whole; late reports are ignored.
      const round = this.#rounds.get(id);
      if (round === undefined) return;
      this.#rounds.delete(id);
      round.reject(asVerdictError(err));
    });
    return sent;
  }

  /**
   * Queues the round's records from `topicIndex`/`recordIndex` on. A full queue waits for reports to free
   * room and goes on where it stopped; a record librdkafka refuses to queue counts as reported with that error.
   */
  async #produceFrom(client: LibrdkafkaProducerClient, id: number, topicIndex: number, recordIndex: number): Promise<void> {
    const round = this.#rounds.get(id);
    if (round === undefined) return;
    let place = 0;
    for (let t = 0; t < topicIndex; t++) place += round.batch[t]!.records.length;
    place += recordIndex;
    for (let t = topicIndex; t < round.batch.length; t++) {
      const { topic, records } = round.batch[t]!;
      for (let r = t === topicIndex ? recordIndex : 0; r < records.length; r++, place++) {
        const record: OutboundRecord = records[r]!;
        if (this.#faultArmed) {
          try {
            await failpoint('kafka.produce', (text) => holdsUtf8(record.value, text));
          } catch (err) {
            this.#fail(id, round, t, r, asVerdictError(err));
            continue;
          }
        }
        try {
          client.produce(topic, record.partition ?? null, record.value === null ? null : bytes(record.value),
            record.key === null ? null : bytes(record.key), null, id * ROUND_SPAN + place, headersOf(record.headers));
        } catch (err) {
          const error = err as LibrdkafkaError;
          if (error.code === QUEUE_FULL) {
            // Every queued record gets a report, delivered or failed (message.timeout.ms bounds the wait).
            await this.#room();
            return this.#produceFrom(client, id, t, r);
          }
          this.#settle(id, round, t, r, error);
        }
      }
    }
  }

  /** Resolves at the next delivery report, which frees a place in librdkafka's queue. */
  #room(): Promise<void> {
    if (this.#roomWaiters === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => { resolve = r; });
      this.#roomWaiters = { promise, resolve };
    }
    return this.#roomWaiters.promise;
  }

  #reported(err: LibrdkafkaError | null, report: LibrdkafkaDeliveryReport): void {
    if (this.#roomWaiters !== undefined) {
      this.#roomWaiters.resolve();
      this.#roomWaiters = undefined;
    }
    const opaque = report.opaque;
    if (typeof opaque !== 'number') return;
    const id = Math.floor(opaque / ROUND_SPAN);
    const round = this.#rounds.get(id);
    if (round === undefined) return;
    if (err === null || err === undefined) {
      if (--round.pending === 0) this.#finish(id, round);
      return;
    }
    let place = opaque % ROUND_SPAN;
    let t = 0;
    while (place >= round.batch[t]!.records.length) place -= round.batch[t++]!.records.length;
    this.#settle(id, round, t, place, err);
  }

  /** Record `topicIndex`/`recordIndex` of the round failed with `err`. */
  #settle(id: number, round: Round, topicIndex: number, recordIndex: number, err: LibrdkafkaError): void {
    const error = toLibrdkafkaProduceError(err);
    if (error instanceof RecordRejectedError) round.refused.push({ topicIndex, recordIndex, error });
    else {
      round.failure ??= error;
      round.failed.push({ topicIndex, recordIndex });
    }
    if (--round.pending === 0) this.#finish(id, round);
  }

  /** A record of the round failed for a reason that is not its own (an injected fault): the round fails. */
  #fail(id: number, round: Round, topicIndex: number, recordIndex: number, error: VerdictError): void {
    round.failure ??= error instanceof TransportError ? error : new TransportError(error.message, { cause: error });
    round.failed.push({ topicIndex, recordIndex });
    if (--round.pending === 0) this.#finish(id, round);
  }

  #finish(id: number, round: Round): void {
    this.#rounds.delete(id);
    round.resolve({ refused: round.refused, failed: round.failed, failure: round.failure });
  }

  /** Waits for what is queued (up to the request timeout), then disconnects both producers. */
  async disconnect(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    if (client !== undefined) {
      await new Promise<void>((resolve) => client.flush(this.#connection.requestTimeout ?? 30_000, () => resolve()));
      await new Promise<void>((resolve, reject) => client.disconnect((err) => {
        if (err === null || err === undefined) resolve();
        else reject(toLibrdkafkaTransportError(err, 'producer disconnect failed'));
      }));
    }
    if (this.#companionConnected !== undefined) {
      await this.#companionConnected.catch(() => undefined);
      this.#companionConnected = undefined;
      await this.#companion.disconnect();
    }
  }
}
