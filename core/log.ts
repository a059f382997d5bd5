import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The root logger. Structured JSON on stderr, so stdout stays free for a command's own output (the demo's
 * progress line, `models list`, reports). Components take a child logger with `component` set.
 */
export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino(
    { name: options.name ?? 'verdict', level: options.level ?? process.env['VERDICT_LOG_LEVEL'] ?? 'info' },
    pino.destination(2),
  );
}

/** A logger that drops everything: for tests and library callers that pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });
