/**
 * Writes the sample models' training and held-out data: raw generated transactions in event-time order, as
 * the pipeline receives them (keyed by card, no per-card features). The training script
 * (models/training/train.py) computes the per-card state and the dense feature vector from them with its own
 * implementation of the pipeline's `state` and `input.features.dense` (models/training/state_features.py),
 * which test/state-parity.test.ts holds to Verdict's.
 *
 *   node dist/scripts/export-training-data.js <outdir> [--train-rows 60000] [--test-rows 40000]
 *     [--train-seed 1001] [--test-seed 2002] [--fraud-rate 0.02] [--cards 2000] [--pipeline <file>]
 *
 * Output: <outdir>/train.jsonl and <outdir>/test.jsonl, one `{"key","event","label","pattern"}` per line, and
 * <outdir>/meta.json (pipeline, seeds, row counts, fraud counts per pattern, simulated days).
 */
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createTransactionGenerator } from '../bench/generator.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface SplitSummary {
  readonly file: string;
  readonly seed: number;
  readonly rows: number;
  readonly fraud: number;
  readonly patterns: Record<string, number>;
  /** Simulated time the split covers, days. */
  readonly days: number;
}

async function writeSplit(path: string, seed: number, rows: number, fraudRate: number, cards: number): Promise<SplitSummary> {
  const gen = createTransactionGenerator({ seed, fraudRate, cards });
  const out = createWriteStream(path);
  const patterns: Record<string, number> = {};
  let fraud = 0;
  let first = 0;
  let last = 0;
  for (let i = 0; i < rows; i++) {
    const { event, isFraud, pattern } = gen.next();
    if (i === 0) first = event.ts;
    last = event.ts;
    const line = JSON.stringify({ key: event.key, event, label: isFraud ? 1 : 0, pattern }) + '\n';
    if (!out.write(line)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    if (isFraud) fraud++;
    patterns[pattern] = (patterns[pattern] ?? 0) + 1;
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return { file: path, seed, rows, fraud, patterns, days: (last - first) / 86_400_000 };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      'train-rows': { type: 'string', default: '60000' },
      'test-rows': { type: 'string', default: '40000' },
      'train-seed': { type: 'string', default: '1001' },
      'test-seed': { type: 'string', default: '2002' },
      'fraud-rate': { type: 'string', default: '0.02' },
      cards: { type: 'string', default: '2000' },
      pipeline: { type: 'string', default: join(ROOT, 'config/pipelines/card-risk.yaml') },
    },
  });
  const outDir = positionals[0];
  if (outDir === undefined) {
    process.stderr.write('usage: export-training-data <outdir> [--train-rows N] [--test-rows N] [--train-seed S] [--test-seed S] [--cards N]\n');
    process.exitCode = 2;
    return;
  }
  const int = (name: string, v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`--${name} must be a non-negative integer, got ${v}`);
    return n;
  };
  const fraudRate = Number(values['fraud-rate']);
  const trainSeed = int('train-seed', values['train-seed']);
  const testSeed = int('test-seed', values['test-seed']);
  const cards = int('cards', values.cards);
  if (trainSeed === testSeed) throw new RangeError('train and test seeds must differ, or the held-out set is not held out');
  if (!(fraudRate >= 0 && fraudRate <= 1)) throw new RangeError(`--fraud-rate must be in [0, 1], got ${values['fraud-rate']}`);

  mkdirSync(outDir, { recursive: true });
  const train = await writeSplit(join(outDir, 'train.jsonl'), trainSeed, int('train-rows', values['train-rows']), fraudRate, cards);
  const test = await writeSplit(join(outDir, 'test.jsonl'), testSeed, int('test-rows', values['test-rows']), fraudRate, cards);
  const meta = { pipeline: relative(ROOT, values.pipeline), fraudRate, cards, train, test };
  writeFileSync(join(outDir, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
  process.stdout.write(`wrote ${train.rows} train rows (${train.fraud} fraud) and ${test.rows} test rows (${test.fraud} fraud) to ${outDir}\n`);
}

await main();
