/**
 * Writes the sample models' training and held-out data: generated transactions mapped through the very
 * feature spec the pipeline uses (`input.features.dense` of config/pipelines/card-risk.yaml), so the models
 * are trained on exactly what they will see in production.
 *
 *   node dist/scripts/export-training-data.js <outdir> [--train-rows 60000] [--test-rows 20000]
 *     [--train-seed 1001] [--test-seed 2002] [--fraud-rate 0.02] [--pipeline <file>]
 *
 * Output: <outdir>/train.csv, <outdir>/test.csv (the feature columns, then `label` 0/1, then `pattern`) and
 * <outdir>/meta.json (columns, seeds, row counts, fraud counts).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { z } from 'zod';
import { createTransactionGenerator } from '../bench/generator.js';
import { featureSchema } from '../config/pipeline-schema.js';
import { compileFeatures, type FeatureMapper } from '../pipeline/ingest/features.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const denseSpec = z.object({ input: z.object({ features: z.object({ dense: z.array(featureSchema).min(1) }) }) });

interface SplitSummary {
  readonly file: string;
  readonly seed: number;
  readonly rows: number;
  readonly fraud: number;
  readonly patterns: Record<string, number>;
}

function writeSplit(path: string, mapper: FeatureMapper, seed: number, rows: number, fraudRate: number): SplitSummary {
  const gen = createTransactionGenerator({ seed, fraudRate });
  const row = new Float32Array(mapper.width);
  const lines: string[] = [[...mapper.columns, 'label', 'pattern'].join(',')];
  const patterns: Record<string, number> = {};
  let fraud = 0;
  for (let i = 0; i < rows; i++) {
    const { event, isFraud, pattern } = gen.next();
    mapper.map(event, row);
    // A float32 read back as a double prints its shortest exact form, so Python recovers the same float32.
    lines.push(`${Array.from(row, String).join(',')},${isFraud ? 1 : 0},${pattern}`);
    if (isFraud) fraud++;
    patterns[pattern] = (patterns[pattern] ?? 0) + 1;
  }
  writeFileSync(path, lines.join('\n') + '\n');
  return { file: path, seed, rows, fraud, patterns };
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      'train-rows': { type: 'string', default: '60000' },
      'test-rows': { type: 'string', default: '20000' },
      'train-seed': { type: 'string', default: '1001' },
      'test-seed': { type: 'string', default: '2002' },
      'fraud-rate': { type: 'string', default: '0.02' },
      pipeline: { type: 'string', default: join(ROOT, 'config/pipelines/card-risk.yaml') },
    },
  });
  const outDir = positionals[0];
  if (outDir === undefined) {
    process.stderr.write('usage: export-training-data <outdir> [--train-rows N] [--test-rows N] [--train-seed S] [--test-seed S]\n');
    process.exitCode = 2;
    return;
  }
  const int = (name: string, v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`--${name} must be a non-negative integer, got ${v}`);
    return n;
  };
  const fraudRate = Number(values['fraud-rate']);
  const doc = denseSpec.parse(parse(readFileSync(values.pipeline, 'utf8')));
  const mapper = compileFeatures(doc.input.features.dense);

  const trainSeed = int('train-seed', values['train-seed']);
  const testSeed = int('test-seed', values['test-seed']);
  if (trainSeed === testSeed) throw new RangeError('train and test seeds must differ, or the held-out set is not held out');
  if (!(fraudRate >= 0 && fraudRate <= 1)) throw new RangeError(`--fraud-rate must be in [0, 1], got ${values['fraud-rate']}`);

  mkdirSync(outDir, { recursive: true });
  const train = writeSplit(join(outDir, 'train.csv'), mapper, trainSeed, int('train-rows', values['train-rows']), fraudRate);
  const test = writeSplit(join(outDir, 'test.csv'), mapper, testSeed, int('test-rows', values['test-rows']), fraudRate);
  const meta = { pipeline: relative(ROOT, values.pipeline), columns: mapper.columns, fraudRate, train, test };
  writeFileSync(join(outDir, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
  process.stdout.write(`wrote ${train.rows} train rows (${train.fraud} fraud) and ${test.rows} test rows (${test.fraud} fraud) to ${outDir}\n`);
}

main();
