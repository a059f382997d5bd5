"""Trains Verdict's sample models and registers them as new versions in the model registry.

    /usr/bin/python3 models/training/train.py --data /tmp/verdict-train \
        [--registry models/registry] [--fixtures test/fixtures/parity] [--pipeline config/pipelines/card-risk.yaml]

Reads <data>/train.jsonl, test.jsonl and meta.json (raw events, written by scripts/export-training-data.ts),
computes each event's per-card state and dense feature vector from the pipeline file's `state` and
`input.features.dense` sections (state_features.py: the same Semantics as Verdict's pipeline/state/), trains
  fraud_gbt v3 and v4   sklearn GradientBoostingClassifier, exported by hand (gbt_onnx.py)
  fraud_mlp v2          torch MLP with standardisation in the graph
  txn_autoencoder v2    torch autoencoder on legitimate rows; outputs the reconstruction error
and writes, per model version, model.onnx + manifest.json; moves the aliases (production to the new versions,
canary to fraud_gbt v4), appending to each aliases.json's history as `verdict models promote` does; writes one
parity fixture per version (a held-out sample with Python's outputs, for test/models-parity.test.ts),
<data>/test.csv (the held-out feature rows) and <data>/parity-expected.json (Python's outputs on the whole
held-out set, for check_parity.mjs, which replays it through onnxruntime-node). Earlier versions (v1, v2 of
fraud_gbt, v1 of the others: the 16-column features with precomputed velocities) stay as they are.
"""
import argparse
import csv
import hashlib
import json
import os
import shutil
import sys
from datetime import datetime, timezone

import numpy as np
import sklearn
import torch
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import average_precision_score, roc_auc_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gbt_onnx  # noqa: E402
import nets  # noqa: E402
import state_features  # noqa: E402
import yaml  # noqa: E402

SCRIPT = "models/training/train.py"
FIXTURE_ROWS_PER_CLASS = 25
THRESHOLDS = (0.3, 0.5, 0.9)  # the cut-offs card-risk.yaml's cascade and rules use
FIXED_FPR = 0.01  # recall per pattern is reported where 1% of legitimate traffic is flagged
GBT_VERSIONS = {
    3: dict(n_estimators=80, max_depth=3, learning_rate=0.1, subsample=1.0, random_state=7),
    4: dict(n_estimators=150, max_depth=4, learning_rate=0.08, subsample=0.8, random_state=7),
}
GBT_ALIASES = {"production": 3, "canary": 4}
MLP_VERSION = 2
AE_VERSION = 2
SEED = 7
WIDTH = None  # set from the pipeline's dense spec


def load(path, pipeline):
    """Raw events -> (columns, X float32, y, patterns): state per card, then the dense features, in stream order."""
    state = state_features.PartitionState(state_features.compile_state(pipeline["state"]))
    mapper = state_features.FeatureMapper(pipeline["input"]["features"]["dense"])
    rows, labels, patterns = [], [], []
    with open(path) as f:
        for offset, line in enumerate(f):
            rec = json.loads(line)
            read = state.apply(offset, rec["key"], rec["event"])
            assert "values" in read, f"{path}:{offset + 1}: state refused the event: {read}"
            rows.append(mapper.map(rec["event"], read["values"]))
            labels.append(int(rec["label"]))
            patterns.append(rec["pattern"])
    return mapper.columns, np.array(rows, dtype=np.float32), np.array(labels, dtype=np.int64), np.array(patterns)


def save_onnx(model, path):
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


def rounded(d):
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in d.items()}


def precision_recall(y, predicted):
    tp = int((predicted & (y == 1)).sum())
    flagged = int(predicted.sum())
    return (tp / flagged if flagged else 0.0), tp / int(y.sum())


def recall_at_fpr(y, score, patterns):
    """Recall overall and per fraud pattern at the score cut-off that flags FIXED_FPR of legitimate rows."""
    cut = float(np.quantile(score[y == 0], 1 - FIXED_FPR))
    flagged = score > cut
    out = {"recall_at_fpr_1pct": float(flagged[y == 1].mean())}
    for pattern in sorted(set(patterns[y == 1])):
        out[f"recall_at_fpr_1pct_{pattern}"] = float(flagged[patterns == pattern].mean())
    return out


def classifier_metrics(y, p, patterns):
    m = {
        "auc": float(roc_auc_score(y, p)),
        "average_precision": float(average_precision_score(y, p)),
        "base_rate": float(y.mean()),
        "test_rows": int(len(y)),
    }
    for t in THRESHOLDS:
        precision, recall = precision_recall(y, p >= t)
        key = str(t).replace(".", "_")
        m[f"precision_at_{key}"] = precision
        m[f"recall_at_{key}"] = recall
    m.update(recall_at_fpr(y, p, patterns))
    return rounded(m)


def anomaly_metrics(y, score, patterns):
    legit = score[y == 0]
    cut = float(np.quantile(legit, 0.99))
    precision, recall = precision_recall(y, score > cut)
    return rounded({
        "auc": float(roc_auc_score(y, score)),
        "average_precision": float(average_precision_score(y, score)),
        "base_rate": float(y.mean()),
        "test_rows": int(len(y)),
        "legit_score_p50": float(np.quantile(legit, 0.5)),
        "legit_score_p95": float(np.quantile(legit, 0.95)),
        "legit_score_p99": cut,
        "fraud_score_p50": float(np.median(score[y == 1])),
        "precision_above_legit_p99": precision,
        "recall_above_legit_p99": recall,
        **recall_at_fpr(y, score, patterns),
    })


class Registry:
    def __init__(self, root, created_at):
        self.root = root
        self.created_at = created_at

    def write_version(self, name, version, write_model, description, output, metrics, training):
        folder = os.path.join(self.root, name, str(version))
        shutil.rmtree(folder, ignore_errors=True)  # a retrain rewrites its own versions, never earlier ones
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "model.onnx")
        write_model(path)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        manifest = {
            "name": name,
            "version": version,
            "description": description,
            "createdAt": self.created_at,
            "sha256": digest,
            "inputs": [{"name": "features", "type": "float32", "shape": ["N", WIDTH]}],
            "outputs": [{"name": output, "type": "float32", "shape": ["N", 1]}],
            "metrics": metrics,
            "training": training,
        }
        with open(os.path.join(folder, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
        size = os.path.getsize(path)
        assert size < 1_000_000, f"{path} is {size} bytes; sample models must stay under 1 MB"
        print(f"  {name}@{version}: {size} bytes, auc {metrics['auc']:.4f}")

    def move_aliases(self, name, aliases):
        """Points each alias at its version, appending a promote to the history (as models/registry.ts does)."""
        path = os.path.join(self.root, name, "aliases.json")
        doc = {"aliases": {}, "history": []}
        if os.path.exists(path):
            with open(path) as f:
                doc = json.load(f)
        for alias, version in aliases.items():
            previous = doc["aliases"].get(alias)
            if previous == version:
                continue
            doc["aliases"][alias] = version
            doc["history"].append({"alias": alias, "from": previous, "to": version, "at": self.created_at, "action": "promote"})
        with open(path, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")


def fixture_rows(y, seed):
    """A fixed held-out sample with both classes, so parity and the fraud-scores-higher check both mean something."""
    rng = np.random.default_rng(seed)
    fraud = rng.choice(np.flatnonzero(y == 1), FIXTURE_ROWS_PER_CLASS, replace=False)
    legit = rng.choice(np.flatnonzero(y == 0), FIXTURE_ROWS_PER_CLASS, replace=False)
    return np.sort(np.concatenate([fraud, legit]))


def write_fixture(folder, name, version, output, X, y, expected, rows):
    os.makedirs(folder, exist_ok=True)
    doc = {
        "model": name,
        "version": version,
        "input": "features",
        "output": output,
        "tolerance": 1e-4,
        "rows": [
            # float(np.float32) prints the shortest double that is exactly that float32, so JSON round-trips it.
            {"features": [float(v) for v in X[i]], "label": int(y[i]), "expected": float(np.float32(expected[i]))}
            for i in rows
        ],
    }
    with open(os.path.join(folder, f"{name}-v{version}.json"), "w") as f:
        json.dump(doc, f)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--registry", default="models/registry")
    ap.add_argument("--fixtures", default="test/fixtures/parity")
    ap.add_argument("--pipeline", default="config/pipelines/card-risk.yaml")
    args = ap.parse_args()
    torch.set_num_threads(1)  # small models; threads only add noise on a shared machine
    global WIDTH

    with open(os.path.join(args.data, "meta.json")) as f:
        meta = json.load(f)
    with open(args.pipeline) as f:
        pipeline = yaml.safe_load(f)
    columns, X, y, _ = load(os.path.join(args.data, "train.jsonl"), pipeline)
    _, Xt, yt, pt = load(os.path.join(args.data, "test.jsonl"), pipeline)
    WIDTH = len(columns)
    with open(os.path.join(args.data, "test.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*columns, "label", "pattern"])
        for row, label, pattern in zip(Xt, yt, pt):
            w.writerow([*(repr(float(v)) for v in row), int(label), pattern])
    print(f"train {X.shape[0]} rows ({y.mean():.2%} fraud), held-out {Xt.shape[0]} rows ({yt.mean():.2%} fraud)")

    created_at = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    registry = Registry(args.registry, created_at)
    provenance = {
        "script": SCRIPT, "seed": SEED, "rows": int(X.shape[0]),
        "dataTrainSeed": meta["train"]["seed"], "dataTestSeed": meta["test"]["seed"],
        "testRows": int(Xt.shape[0]), "cards": meta["cards"],
        "features": "state and input.features.dense of config/pipelines/card-risk.yaml",
    }
    sample = fixture_rows(yt, SEED)
    expected_all = []

    # ---- gradient-boosted trees, two versions -----------------------------------------------------------
    for version, params in GBT_VERSIONS.items():
        gbt = GradientBoostingClassifier(**params).fit(X, y)
        proba = gbt.predict_proba(Xt)[:, 1]
        onnx_model, arrays = gbt_onnx.export_gbt(gbt, Xt[:64], WIDTH)
        # Check the hand export against sklearn before any runtime sees it: same trees, same thresholds.
        diff = float(np.abs(gbt_onnx.evaluate_export(arrays, Xt) - proba).max())
        assert diff < 1e-5, f"fraud_gbt v{version} export differs from sklearn by {diff}"
        print(f"  fraud_gbt v{version}: numpy replay of the export matches sklearn (max |diff| {diff:.2e})")
        registry.write_version(
            "fraud_gbt", version, lambda p, m=onnx_model: save_onnx(m, p),
            f"Gradient-boosted trees ({params['n_estimators']} trees, depth {params['max_depth']}) giving "
            "P(fraud) for a card transaction. TreeEnsembleRegressor (log-odds) then Sigmoid.",
            "fraud_probability", classifier_metrics(yt, proba, pt),
            {**provenance, "framework": f"scikit-learn {sklearn.__version__}",
             "trees": params["n_estimators"], "depth": params["max_depth"]},
        )
        write_fixture(args.fixtures, "fraud_gbt", version, "fraud_probability", Xt, yt, proba, sample)
        expected_all.append({"name": "fraud_gbt", "version": version, "output": "fraud_probability",
                             "expected": proba.astype(np.float32).tolist()})
    registry.move_aliases("fraud_gbt", GBT_ALIASES)

    # ---- MLP -----------------------------------------------------------------------------------------------
    mlp = nets.train_mlp(X, y, SEED)
    proba = nets.predict(mlp, Xt)
    registry.write_version(
        "fraud_mlp", MLP_VERSION, lambda p: nets.export(mlp, p, "fraud_probability", WIDTH),
        f"MLP {WIDTH}-32-16-1 giving P(fraud); standardisation is folded into the graph.",
        "fraud_probability", classifier_metrics(yt, proba, pt),
        {**provenance, "framework": f"torch {torch.__version__}", "epochs": 25},
    )
    write_fixture(args.fixtures, "fraud_mlp", MLP_VERSION, "fraud_probability", Xt, yt, proba, sample)
    expected_all.append({"name": "fraud_mlp", "version": MLP_VERSION, "output": "fraud_probability",
                         "expected": proba.astype(np.float32).tolist()})
    registry.move_aliases("fraud_mlp", {"production": MLP_VERSION})

    # ---- autoencoder ---------------------------------------------------------------------------------------
    ae = nets.train_autoencoder(X[y == 0], SEED)
    score = nets.predict(ae, Xt)
    registry.write_version(
        "txn_autoencoder", AE_VERSION, lambda p: nets.export(ae, p, "score", WIDTH),
        f"Autoencoder {WIDTH}-8-4-8-{WIDTH} trained on legitimate transactions only; `score` is the mean squared "
        "reconstruction error on standardised features (higher = more unusual).",
        "score", anomaly_metrics(yt, score, pt),
        {**provenance, "rows": int((y == 0).sum()), "framework": f"torch {torch.__version__}", "epochs": 30},
    )
    write_fixture(args.fixtures, "txn_autoencoder", AE_VERSION, "score", Xt, yt, score, sample)
    expected_all.append({"name": "txn_autoencoder", "version": AE_VERSION, "output": "score",
                         "expected": score.astype(np.float32).tolist()})
    registry.move_aliases("txn_autoencoder", {"production": AE_VERSION})

    with open(os.path.join(args.data, "parity-expected.json"), "w") as f:
        json.dump({"models": expected_all}, f)
    print(f"wrote {args.data}/parity-expected.json; now run models/training/check_parity.mjs")


if __name__ == "__main__":
    main()
