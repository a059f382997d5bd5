/**
 * librdkafka's own log into pino, as kafkajs's is (kafkajs-client.ts): at `kafka.logLevel` and above. Its
 * lines carry syslog severities (0 emergency … 3 error, 4 warning, 5 notice, 6 info, 7 debug).
 */
import { kafkaLogLevelSchema, type KafkaLogLevel } from '../../config/kafka-options.js';
import type { Logger } from '../../core/log.js';

/** Syslog's error severity: a line at or below it is a failure (a broker that cannot be reached, SASL refused). */
export const LOG_ERR = 3;

/** The highest severity forwarded at each level; `nothing` forwards none. */
const FORWARDED: Readonly<Record<KafkaLogLevel, number>> = { nothing: -1, error: 3, warn: 4, info: 6, debug: 7 };

/**
 * librdkafka's `log_level` for a `kafka.logLevel`: never below error, because the producer reads the failure
 * lines itself (they name why a connect failed), whatever is forwarded.
 */
export function librdkafkaLogLevel(level: KafkaLogLevel | undefined): number {
  return Math.max(LOG_ERR, FORWARDED[kafkaLogLevelSchema.parse(level)]);
}

export interface LibrdkafkaLogLine {
  readonly severity: number;
  readonly fac: string;
  readonly message: string;
}

/** Forwards one line when `level` lets it through. */
export function forwardLog(logger: Logger, level: KafkaLogLevel | undefined, line: LibrdkafkaLogLine): void {
  if (line.severity > FORWARDED[kafkaLogLevelSchema.parse(level)]) return;
  const fields = { facility: line.fac, severity: line.severity };
  if (line.severity <= LOG_ERR) logger.error(fields, line.message);
  else if (line.severity === 4) logger.warn(fields, line.message);
  else if (line.severity <= 6) logger.info(fields, line.message);
  else logger.debug(fields, line.message);
}
