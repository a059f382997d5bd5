// Replays the whole held-out set through onnxruntime-node (the runtime Verdict serves with) and compares every
// output with what Python computed (sklearn predict_proba, torch forward). Python has no onnxruntime here, so
// this is the only check that the exported graphs mean what the trained models meant.
//
//   node models/training/check_parity.mjs --data /tmp/verdict-train [--registry models/registry] [--tolerance 1e-4]
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    registry: { type: 'string', default: 'models/registry' },
    tolerance: { type: 'string', default: '1e-4' },
  },
});
if (values.data === undefined) {
  console.error('usage: check_parity.mjs --data <dir> [--registry models/registry] [--tolerance 1e-4]');
  process.exit(2);
}
const tolerance = Number(values.tolerance);
const BATCH = 1024;

// test.csv (written by train.py): the held-out feature columns, then label, then pattern.
const [header, ...lines] = readFileSync(join(values.data, 'test.csv'), 'utf8').trim().split('\n');
const WIDTH = header.split(',').length - 2;
const features = new Float32Array(lines.length * WIDTH);
const labels = new Uint8Array(lines.length);
lines.forEach((line, i) => {
  const cells = line.split(',');
  for (let j = 0; j < WIDTH; j++) features[i * WIDTH + j] = Number(cells[j]);
  labels[i] = Number(cells[WIDTH]);
});

/** Rank-based AUC (Mann-Whitney U) with ties averaged. */
function auc(scores, y) {
  const order = Array.from(scores.keys()).sort((a, b) => scores[a] - scores[b]);
  const ranks = new Float64Array(scores.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && scores[order[j + 1]] === scores[order[i]]) j++;
    for (let k = i; k <= j; k++) ranks[order[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  let pos = 0, rankSum = 0;
  y.forEach((label, i) => { if (label === 1) { pos++; rankSum += ranks[i]; } });
  const neg = y.length - pos;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

const { models } = JSON.parse(readFileSync(join(values.data, 'parity-expected.json'), 'utf8'));
let failed = false;
for (const { name, version, output, expected } of models) {
  const folder = join(values.registry, name, String(version));
  const bytes = readFileSync(join(folder, 'model.onnx'));
  const manifest = JSON.parse(readFileSync(join(folder, 'manifest.json'), 'utf8'));
  const digest = createHash('sha256').update(bytes).digest('hex');
  const session = await ort.InferenceSession.create(bytes);
  const got = new Float32Array(lines.length);
  for (let start = 0; start < lines.length; start += BATCH) {
    const n = Math.min(BATCH, lines.length - start);
    const input = new ort.Tensor('float32', features.subarray(start * WIDTH, (start + n) * WIDTH), [n, WIDTH]);
    const result = await session.run({ features: input });
    const out = result[output];
    if (out === undefined || out.dims.join() !== `${n},1`) throw new Error(`${name}@${version}: output ${output} has dims ${out?.dims}`);
    got.set(out.data, start);
  }
  let maxDiff = 0;
  for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - expected[i]));
  const ok = maxDiff < tolerance && digest === manifest.sha256;
  failed ||= !ok;
  console.log(
    `${ok ? 'ok  ' : 'FAIL'} ${name}@${version}: ${got.length} rows, max |ort - python| ${maxDiff.toExponential(2)}, ` +
      `ort AUC ${auc(got, labels).toFixed(4)} (manifest ${manifest.metrics.auc}), sha256 ${digest === manifest.sha256 ? 'matches' : 'DIFFERS'}`,
  );
  await session.release();
}
process.exit(failed ? 1 : 0);
