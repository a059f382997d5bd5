"""Writes the state parity fixture: a fixed record sequence and what each record's event saw, computed by the
training script's own state code (state_features.py), for test/state-parity.test.ts, which runs the same
records through Verdict's PartitionState and must get the same values (and the same dense feature rows).

    /usr/bin/python3 models/training/make_state_fixture.py --events /tmp/verdict-train/parity-events.jsonl \
        [--pipeline config/pipelines/card-risk.yaml] [--out test/fixtures/state-parity.json]

The events come from scripts/export-state-parity-events.ts (generated, with disorder injected).
"""
import argparse
import json
import os
import sys

import numpy as np
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import state_features  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", required=True)
    ap.add_argument("--pipeline", default="config/pipelines/card-risk.yaml")
    ap.add_argument("--out", default="test/fixtures/state-parity.json")
    args = ap.parse_args()
    with open(args.pipeline) as f:
        pipeline = yaml.safe_load(f)
    state = state_features.PartitionState(state_features.compile_state(pipeline["state"]))
    mapper = state_features.FeatureMapper(pipeline["input"]["features"]["dense"])
    records, expected = [], []
    with open(args.events) as f:
        for offset, line in enumerate(f):
            rec = json.loads(line)
            read = state.apply(offset, rec["key"], rec["event"])
            if "values" in read:
                try:
                    # As float32, what the pipeline's Float32Array row holds (the shortest repr of that float32).
                    read["features"] = [float(np.float32(v)) for v in mapper.map(rec["event"], read["values"])]
                except state_features.FeatureError:
                    read["features"] = None  # an event the schema would refuse (a dropped field): no row
            records.append(rec)
            expected.append(read)
    doc = {
        "about": "State parity: records (offset = position) and what each saw per models/training/state_features.py; "
                 "written by models/training/make_state_fixture.py, checked by test/state-parity.test.ts",
        "pipeline": os.path.relpath(args.pipeline),
        "columns": mapper.columns,
        "counts": state.counts,
        "records": records,
        "expected": expected,
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    applied = sum(1 for e in expected if "values" in e)
    print(f"wrote {args.out}: {len(records)} records, {applied} with values, {len(records) - applied} refused, {state.counts}")


if __name__ == "__main__":
    main()
