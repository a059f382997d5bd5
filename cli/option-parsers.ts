/** commander argument parsers shared by the commands: they reject bad values with the option's name. */
import { InvalidArgumentError } from 'commander';

/** The global `--log-level` default: the one place it lives, for commands reached without `main.ts`. */
export const DEFAULT_LOG_LEVEL = 'warn';

export const positive = (name: string) => (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
  return n;
};

export const fraction = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError('must be a number in [0, 1)');
  return n;
};

export const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
};

/** `host:port[,host:port…]`, as Kafka bootstrap brokers. */
export const brokerList = (value: string): string[] => {
  const brokers = value.split(',').map((b) => b.trim()).filter((b) => b.length > 0);
  if (brokers.length === 0 || brokers.some((b) => !/^[^\s:]+:\d+$/.test(b))) throw new InvalidArgumentError('expected host:port[,host:port…]');
  return brokers;
};
