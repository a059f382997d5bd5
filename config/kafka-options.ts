/**
 * The `kafka` block of the daemon config, as users write it (loose, with defaults). Parsing yields the
 * fully defaulted `KafkaOptions`, which spreads straight into `KafkaSource` and `KafkaSink` options.
 * TLS material is PEM text inline (`ca`, `cert`, `key`) or a file (`caFile`, `certFile`, `keyFile`), read
 * when the client is made (streams/kafka/kafkajs-client.ts); in the daemon config a relative file path is
 * resolved against the config file's directory.
 */
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { formatZodError } from '../core/zod-error.js';

const pem = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);
const file = z.string().min(1);

/** Each PEM item: inline text or a file, not both. */
const TLS_PAIRS = [['ca', 'caFile'], ['cert', 'certFile'], ['key', 'keyFile']] as const;

/**
 * TLS as Node's `tls.connect` takes it (what kafkajs passes on): `ca` (trusted CAs instead of the system's),
 * `cert` and `key` (a client certificate, for mutual TLS), `passphrase` (of an encrypted `key`),
 * `servername` (SNI and the name the broker's certificate is checked against, when it is not the broker's
 * host), `rejectUnauthorized` (default true: false accepts any certificate, for tests only).
 */
export const kafkaTlsSchema = z.object({
  ca: pem.optional(),
  caFile: file.optional(),
  cert: pem.optional(),
  certFile: file.optional(),
  key: pem.optional(),
  keyFile: file.optional(),
  passphrase: z.string().min(1).optional(),
  servername: z.string().min(1).optional(),
  rejectUnauthorized: z.boolean().optional(),
}).strict().superRefine((tls, ctx) => {
  for (const [inline, fromFile] of TLS_PAIRS) {
    if (tls[inline] !== undefined && tls[fromFile] !== undefined) {
      ctx.addIssue({ code: 'custom', path: [fromFile], message: `give ${inline} or ${fromFile}, not both` });
    }
  }
});

/** The SASL mechanisms the config can express; oauthbearer and aws need code (a token provider, AWS credentials). */
export const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

export const kafkaSaslSchema = z.object({
  mechanism: z.enum(SASL_MECHANISMS, {
    error: () => `must be one of ${SASL_MECHANISMS.join(', ')} (oauthbearer and aws are not supported: they need a token provider or AWS credentials in code)`,
  }),
  username: z.string().min(1),
  password: z.string().min(1),
}).strict();

const positiveInt = z.number().int().positive();

/**
 * Which client library produces (streams/kafka/client-factory.ts; README "Choosing the producer"):
 * - `kafkajs` (default): the design card's client, pure JavaScript, always installed;
 * - `librdkafka`: @confluentinc/kafka-javascript's native producer, an optional dependency built at install;
 *   the daemon refuses to start (CONFIG_INVALID) when it is not installed;
 * - `auto`: librdkafka when installed, else kafkajs with a warning in the log.
 * The consumer is kafkajs in every case.
 */
export const PRODUCER_CLIENTS = ['kafkajs', 'librdkafka', 'auto'] as const;
export type ProducerClient = (typeof PRODUCER_CLIENTS)[number];

export const kafkaProducerSchema = z.object({
  client: z.enum(PRODUCER_CLIENTS).default('kafkajs'),
  /**
   * librdkafka only: ms a partition's queued records may wait to fill a produce request (its `linger.ms`).
   * kafkajs sends each round at once; the sink already merges what arrives while rounds are out.
   */
  lingerMs: z.number().nonnegative().max(1_000).default(1),
  /** -1 waits for every in-sync replica: a decision counts as delivered only then. */
  acks: z.union([z.literal(-1), z.literal(1)]).default(-1),
  compression: z.enum(['none', 'gzip']).default('none'),
  /** Above 1, a retried request can land after a later one (the producer is not idempotent; see kafka-sink.ts). */
  maxInFlightRequests: z.number().int().positive().default(5),
  retries: z.number().int().nonnegative().default(5),
  initialRetryTime: positiveInt.default(100),
  maxRetryTime: positiveInt.default(5_000),
}).strict();

/**
 * How long a fetch may wait for records on a real broker, ms: Kafka's own `fetch.max.wait.ms` default. A
 * broker answers a waiting fetch as soon as records arrive, so this costs no latency there; it only bounds
 * how often an idle consumer asks.
 */
export const BROKER_FETCH_WAIT_MS = 500;

/**
 * The same against librdkafka's mock cluster (the test broker, mock-kafka/), ms. The mock never wakes a
 * waiting fetch: a fetch that found no records is answered, empty, when its wait ends, so every consumer hop
 * costs up to the whole wait (README "The latency floor"). The bench's clients and a daemon that detects the
 * mock (streams/kafka/fetch-wait.ts) use this.
 */
export const MOCK_FETCH_WAIT_MS = 5;

/** A consumer's group and fetch timings (ms, bytes), with their defaults: a real cluster's. */
export const kafkaConsumerTimingsSchema = z.object({
  sessionTimeout: positiveInt.default(30_000),
  heartbeatInterval: positiveInt.default(3_000),
  rebalanceTimeout: positiveInt.default(60_000),
  maxBytesPerPartition: positiveInt.default(1_048_576),
  maxWaitTimeInMs: positiveInt.default(BROKER_FETCH_WAIT_MS),
});
export type KafkaConsumerTimings = z.output<typeof kafkaConsumerTimingsSchema>;

/**
 * The daemon's and a `KafkaSource`'s fetch wait: absent means chosen at start from the broker
 * (streams/kafka/fetch-wait.ts): `MOCK_FETCH_WAIT_MS` against librdkafka's mock cluster, else
 * `BROKER_FETCH_WAIT_MS`. A value given always wins.
 */
const autoFetchWait = { maxWaitTimeInMs: positiveInt.optional() };

/**
 * How a Kafka source consumes, beyond the timings: the one place these defaults live, for the daemon's
 * `kafka` block and for a `KafkaSource` built from code alike.
 */
export const kafkaConsumingSchema = z.object({
  /** Where a partition without a committed offset starts: its first record (true) or its end (false). */
  fromBeginning: z.boolean().default(true),
  /** Partitions whose batches kafkajs hands over concurrently; handing over is cheap, so a few suffice. */
  partitionsConsumedConcurrently: z.number().int().positive().default(4),
  /** An unpaused partition with records to read and no batch for this long means a stalled consumer: it is recreated. 0: off. */
  stallTimeoutMs: z.number().int().nonnegative().default(15_000),
  /** Consecutive consumer crashes at one position, nothing delivered between, reported as a crash loop. */
  crashLoopThreshold: z.number().int().min(2).default(3),
});

/** kafkajs's own log, forwarded to the pino logger at this level and above. */
export const kafkaLogLevelSchema = z.enum(['nothing', 'error', 'warn', 'info', 'debug']).default('warn');

export const kafkaOptionsSchema = z.object({
  brokers: z.array(z.string().regex(/^[^\s:]+:\d+$/, 'must be host:port')).min(1),
  clientId: z.string().min(1).default('verdict'),
  groupId: z.string().min(1).default('verdict'),
  ssl: z.union([z.boolean(), kafkaTlsSchema]).default(false),
  /** null: no SASL. */
  sasl: kafkaSaslSchema.nullable().default(null),
  connectionTimeout: positiveInt.default(3_000),
  requestTimeout: positiveInt.default(30_000),
  ...kafkaConsumerTimingsSchema.shape,
  ...autoFetchWait,
  ...kafkaConsumingSchema.shape,
  logLevel: kafkaLogLevelSchema,
  // Every field of the producer schema has its default, so an absent block parses to the defaults.
  producer: kafkaProducerSchema.prefault({}),
}).strict().superRefine((o, ctx) => {
  // librdkafka has no setting for the TLS server name (SNI): only the kafkajs producer can honour it.
  if (o.producer.client !== 'kafkajs' && typeof o.ssl === 'object' && o.ssl.servername !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['ssl', 'servername'], message: `needs producer.client kafkajs: the librdkafka producer cannot set the TLS server name (producer.client is ${o.producer.client})` });
  }
  // kafkajs refuses this at run time; saying so at load time names the field.
  if (o.heartbeatInterval >= o.sessionTimeout) {
    ctx.addIssue({ code: 'custom', path: ['heartbeatInterval'], message: `must be below sessionTimeout (${o.sessionTimeout})` });
  }
  // The watchdog first looks at half the timeout, and a fetch may wait maxWaitTimeInMs for records to arrive.
  // Left to the broker, the wait is at most BROKER_FETCH_WAIT_MS, so the bound holds whichever is chosen.
  const wait = o.maxWaitTimeInMs ?? BROKER_FETCH_WAIT_MS;
  if (o.stallTimeoutMs !== 0 && o.stallTimeoutMs <= 2 * wait) {
    const unset = o.maxWaitTimeInMs === undefined ? `: unset, the wait is chosen at start, ${BROKER_FETCH_WAIT_MS} ms at most` : '';
    ctx.addIssue({ code: 'custom', path: ['stallTimeoutMs'], message: `must be 0 (off) or above twice maxWaitTimeInMs (${2 * wait})${unset}` });
  }
});

/**
 * A `KafkaSource`'s own options, as code passes them (streams/kafka/kafka-source.ts): the consumer timings,
 * how it consumes, and the backoff between re-creations of a crashed consumer (full jitter, ms).
 */
export const kafkaSourceSchema = z.object({
  ...kafkaConsumerTimingsSchema.shape,
  ...autoFetchWait,
  ...kafkaConsumingSchema.shape,
  restartBackoff: z.object({
    initialDelayMs: positiveInt.default(500),
    maxDelayMs: positiveInt.default(30_000),
  }).prefault({}),
});

/** A `KafkaSink`'s own options, as code passes them (streams/kafka/kafka-sink.ts). */
export const kafkaSinkSchema = z.object({
  producer: kafkaProducerSchema.prefault({}),
  /** Produce rounds outstanding at once; later sends wait and are merged. */
  maxOutstandingRounds: positiveInt.default(2),
  /** Records one merged round carries at most (a single larger send still goes whole). */
  maxRecordsPerRound: positiveInt.default(4_096),
});

/** A dead-letter replay's tuning, as code passes it (streams/dlq-replay.ts). */
export const dlqReplaySchema = z.object({
  /** Records produced per produce round. */
  produceBatch: positiveInt.default(500),
  /** ms the reader may go without a new record while partitions are short of their watermark. */
  idleTimeoutMs: positiveInt.default(30_000),
  /** The reader's timings: the daemon consumer's. */
  consumer: kafkaConsumerTimingsSchema.prefault({}),
  /** What the replay produces with: the daemon producer's defaults. */
  producer: kafkaProducerSchema.prefault({}),
});

export type KafkaOptions = z.output<typeof kafkaOptionsSchema>;
export type KafkaTls = z.output<typeof kafkaTlsSchema>;
export type KafkaSasl = z.output<typeof kafkaSaslSchema>;
export type KafkaProducerOptions = z.output<typeof kafkaProducerSchema>;
export type KafkaConsuming = z.output<typeof kafkaConsumingSchema>;
export type KafkaLogLevel = z.output<typeof kafkaLogLevelSchema>;

/** Validates and defaults a `kafka` block; errors name the field path under `source`. */
export function parseKafkaOptions(raw: unknown, source = 'kafka'): KafkaOptions {
  const parsed = kafkaOptionsSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(formatZodError(parsed.error, source));
  return parsed.data;
}
