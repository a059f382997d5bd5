/**
 * @confluentinc/kafka-javascript, the librdkafka binding, as far as Verdict uses it: its native `Producer`.
 * It is an optional dependency (built at install against the system's OpenSSL and zlib: README "Choosing
 * the producer"), so it is loaded on demand, and typed here rather than from its own declarations, which a
 * machine without it does not have.
 */

/** librdkafka's configuration properties (CONFIGURATION.md of librdkafka), as the binding takes them. */
export type LibrdkafkaConfig = Record<string, string | number | boolean>;

/** An error of the binding: librdkafka's error code (negative: the client's own, positive: Kafka's protocol code). */
export interface LibrdkafkaError {
  readonly code: number;
  readonly message: string;
}

/** What a delivery report carries (`dr_cb: true`): where the record went, and the opaque it was produced with. */
export interface LibrdkafkaDeliveryReport {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly opaque?: unknown;
}

/** A header as the binding takes it: an object with one own key. */
export type LibrdkafkaHeader = Readonly<Record<string, Buffer>>;

export interface LibrdkafkaProducerClient {
  connect(options: { readonly timeout?: number }, callback: (err: LibrdkafkaError | null) => void): unknown;
  /** Serves delivery reports on a thread of librdkafka's, handing them to the event loop. */
  setPollInBackground(on: boolean): void;
  /**
   * Queues one record; throws a LibrdkafkaError when it cannot (queue full, record too large, unknown
   * partition). `partition` null or -1: the configured partitioner picks.
   */
  produce(topic: string, partition: number | null, value: Buffer | null, key: Buffer | null, timestamp: number | null,
    opaque: unknown, headers: readonly LibrdkafkaHeader[]): unknown;
  flush(timeoutMs: number, callback: (err: LibrdkafkaError | null) => void): unknown;
  disconnect(callback: (err: LibrdkafkaError | null) => void): unknown;
  on(event: 'delivery-report', listener: (err: LibrdkafkaError | null, report: LibrdkafkaDeliveryReport) => void): unknown;
  on(event: 'event.error', listener: (err: LibrdkafkaError) => void): unknown;
  on(event: 'event.log', listener: (log: { readonly severity: number; readonly fac: string; readonly message: string }) => void): unknown;
}

export interface LibrdkafkaModule {
  readonly Producer: new (config: LibrdkafkaConfig) => LibrdkafkaProducerClient;
  /** librdkafka's version, e.g. "2.15.1". */
  readonly librdkafkaVersion: string;
}

/** The package; the version package.json pins (optionalDependencies). */
export const LIBRDKAFKA_PACKAGE = '@confluentinc/kafka-javascript';

/** The binding, or why it cannot be loaded (not installed, or its native part does not load). */
export type LibrdkafkaLoad = { readonly module: LibrdkafkaModule } | { readonly missing: string };

let loaded: Promise<LibrdkafkaLoad> | undefined;

/** Loads the binding once per process. Never rejects: a failure is returned as `missing`, with the reason. */
export function loadLibrdkafka(): Promise<LibrdkafkaLoad> {
  loaded ??= (async (): Promise<LibrdkafkaLoad> => {
    try {
      // A constant specifier, never config or data: as a literal, tsc would need the optional package's own
      // type declarations on every machine, including those where it is not installed.
      // eslint-disable-next-line no-restricted-syntax -- LIBRDKAFKA_PACKAGE is the constant above
      const imported = (await import(LIBRDKAFKA_PACKAGE)) as { default?: LibrdkafkaModule } & Partial<LibrdkafkaModule>;
      const module = imported.default ?? (imported as LibrdkafkaModule);
      if (typeof module.Producer !== 'function') return { missing: `${LIBRDKAFKA_PACKAGE} has no native Producer` };
      return { module };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const reason = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND'
        ? `${LIBRDKAFKA_PACKAGE} is not installed`
        : `${LIBRDKAFKA_PACKAGE} did not load: ${(err as Error).message}`;
      return { missing: reason };
    }
  })();
  return loaded;
}
