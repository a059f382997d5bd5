"""Trains Verdict's sample models and writes them to the model registry.

    /usr/bin/python3 models/training/train.py --data /tmp/verdict-train \
        [--registry models/registry] [--fixtures test/fixtures/parity]

Reads <data>/train.csv, test.csv and meta.json (written by scripts/export-training-data.ts), trains
  fraud_gbt v1 and v2   sklearn GradientBoostingClassifier, exported by hand (gbt_onnx.py)
  fraud_mlp v1          torch MLP with standardisation in the graph
  txn_autoencoder v1    torch autoencoder on legitimate rows; outputs the reconstruction error
and writes, per model version, model.onnx + manifest.json, per model aliases.json, one parity fixture per
version (a held-out sample with Python's outputs, for test/models-parity.test.ts), and <data>/parity-expected.json
(Python's outputs on the whole held-out set, for check_parity.mjs, which replays it through onnxruntime-node).
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

SCRIPT = "models/training/train.py"
WIDTH = 16
FIXTURE_ROWS_PER_CLASS = 25
THRESHOLDS = (0.3, 0.5, 0.9)  # the cut-offs card-risk.yaml's cascade and rules use
GBT_VERSIONS = {
    1: dict(n_estimators=80, max_depth=3, learning_rate=0.1, subsample=1.0, random_state=7),
    2: dict(n_estimators=150, max_depth=4, learning_rate=0.08, subsample=0.8, random_state=7),
}
SEED = 7


def load(path):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    X = np.array([[float(v) for v in r[:WIDTH]] for r in rows], dtype=np.float32)
    y = np.array([int(r[WIDTH]) for r in rows], dtype=np.int64)
    return header[:WIDTH], X, y


def save_onnx(model, path):
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


def rounded(d):
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in d.items()}


def precision_recall(y, predicted):
    tp = int((predicted & (y == 1)).sum())
    flagged = int(predicted.sum())
    return (tp / flagged if flagged else 0.0), tp / int(y.sum())


def classifier_metrics(y, p):
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
    return rounded(m)


def anomaly_metrics(y, score):
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
    })


class Registry:
    def __init__(self, root, created_at):
        self.root = root
        self.created_at = created_at

    def reset(self, name):
        shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)

    def write_version(self, name, version, write_model, description, output, metrics, training):
        folder = os.path.join(self.root, name, str(version))
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

    def write_aliases(self, name, aliases):
        history = [{"alias": a, "from": None, "to": v, "at": self.created_at, "action": "promote"} for a, v in aliases.items()]
        with open(os.path.join(self.root, name, "aliases.json"), "w") as f:
            json.dump({"aliases": aliases, "history": history}, f, indent=2)
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
    args = ap.parse_args()
    torch.set_num_threads(1)  # small models; threads only add noise on a shared machine

    with open(os.path.join(args.data, "meta.json")) as f:
        meta = json.load(f)
    columns, X, y = load(os.path.join(args.data, "train.csv"))
    test_columns, Xt, yt = load(os.path.join(args.data, "test.csv"))
    assert columns == test_columns == meta["columns"], "train and test were written with different feature specs"
    print(f"train {X.shape[0]} rows ({y.mean():.2%} fraud), held-out {Xt.shape[0]} rows ({yt.mean():.2%} fraud)")

    created_at = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    registry = Registry(args.registry, created_at)
    provenance = {
        "script": SCRIPT, "seed": SEED, "rows": int(X.shape[0]),
        "dataTrainSeed": meta["train"]["seed"], "dataTestSeed": meta["test"]["seed"],
        "testRows": int(Xt.shape[0]), "features": "input.features.dense of config/pipelines/card-risk.yaml",
    }
    sample = fixture_rows(yt, SEED)
    expected_all = []

    # ---- gradient-boosted trees, two versions -----------------------------------------------------------
    registry.reset("fraud_gbt")
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
            "fraud_probability", classifier_metrics(yt, proba),
            {**provenance, "framework": f"scikit-learn {sklearn.__version__}",
             "trees": params["n_estimators"], "depth": params["max_depth"]},
        )
        write_fixture(args.fixtures, "fraud_gbt", version, "fraud_probability", Xt, yt, proba, sample)
        expected_all.append({"name": "fraud_gbt", "version": version, "output": "fraud_probability",
                             "expected": proba.astype(np.float32).tolist()})
    registry.write_aliases("fraud_gbt", {"production": 1, "canary": 2})

    # ---- MLP -----------------------------------------------------------------------------------------------
    registry.reset("fraud_mlp")
    mlp = nets.train_mlp(X, y, SEED)
    proba = nets.predict(mlp, Xt)
    registry.write_version(
        "fraud_mlp", 1, lambda p: nets.export(mlp, p, "fraud_probability"),
        "MLP 16-32-16-1 giving P(fraud); standardisation is folded into the graph.",
        "fraud_probability", classifier_metrics(yt, proba),
        {**provenance, "framework": f"torch {torch.__version__}", "epochs": 25},
    )
    write_fixture(args.fixtures, "fraud_mlp", 1, "fraud_probability", Xt, yt, proba, sample)
    expected_all.append({"name": "fraud_mlp", "version": 1, "output": "fraud_probability",
                         "expected": proba.astype(np.float32).tolist()})
    registry.write_aliases("fraud_mlp", {"production": 1})

    # ---- autoencoder ---------------------------------------------------------------------------------------
    registry.reset("txn_autoencoder")
    ae = nets.train_autoencoder(X[y == 0], SEED)
    score = nets.predict(ae, Xt)
    registry.write_version(
        "txn_autoencoder", 1, lambda p: nets.export(ae, p, "score"),
        "Autoencoder 16-8-4-8-16 trained on legitimate transactions only; `score` is the mean squared "
        "reconstruction error on standardised features (higher = more unusual).",
        "score", anomaly_metrics(yt, score),
        {**provenance, "rows": int((y == 0).sum()), "framework": f"torch {torch.__version__}", "epochs": 30},
    )
    write_fixture(args.fixtures, "txn_autoencoder", 1, "score", Xt, yt, score, sample)
    expected_all.append({"name": "txn_autoencoder", "version": 1, "output": "score",
                         "expected": score.astype(np.float32).tolist()})
    registry.write_aliases("txn_autoencoder", {"production": 1})

    with open(os.path.join(args.data, "parity-expected.json"), "w") as f:
        json.dump({"models": expected_all}, f)
    print(f"wrote {args.data}/parity-expected.json; now run models/training/check_parity.mjs")


if __name__ == "__main__":
    main()
