"""Per-key state and the dense feature vector, computed the way Verdict computes them, for training.

The training data must see the features the pipeline will compute in production. Verdict computes them in
pipeline/state/ (TypeScript); this module is an independent implementation of the same Semantics (issue 12's
contract, README "State"), read from the same pipeline file, so a model is trained on exactly what it will be
served. test/state-parity.test.ts checks the two agree, value for value, on a fixed event sequence (the
fixture make_state_fixture.py writes with this module).

    definition = compile_state(pipeline_yaml["state"])
    part = PartitionState(definition)            # one input partition
    read = part.apply(offset, key, event)        # {"values": {name: value}} or {"error": {"code": ...}}
    mapper = FeatureMapper(pipeline_yaml["input"]["features"]["dense"])
    row = mapper.map(event, read["values"])      # list of float32-representable floats

Semantics mirrored (per partition, records in offset order):
- t = event time in ms (unit s: *1000); a finite number >= 0, else STATE_EVENT_TIME_INVALID (not applied).
  A null key: STATE_KEY_MISSING (not applied). W_p = greatest applied event time in the partition.
- 1. idle: a known key with max(t, W_p) - key.maxTs > idleAfter is reset first.
  2. late: a known key with t < key.maxTs - allowedLateness is not applied; every value is read at t.
  3. otherwise: before = read(t); apply; after = read(t); each aggregate reports per its `sees`.
- Windowed aggregates keep buckets of B ms (index floor(x/B)); "at t" a window of n = W/B buckets covers
  indices (floor(t/B) - n, floor(t/B)], minus buckets already dropped by retention (index <=
  floor((maxTs - lateness)/B) - n). Sums add in apply order within a bucket, then bucket sums in ascending
  index from 0.0, so floats match bit for bit. mean = sum / count (None when 0).
- distinct: String(value) per bucket (JavaScript's String(): true/false, shortest number form), the union's
  size; a new value is not retained once maxDistinct are retained.
- last: the field value of the applied event with the greatest t (ties: the later); None until one.
- timeSince: (t - maxTs before applying) / 1000, clamped at 0; None for a key's first applied event.
- LRU: past maxKeysPerPartition keys, applying a new key evicts the least recently applied one.
"""
import math
import re
from collections import OrderedDict

STATE_EVENT_TIME_INVALID = "STATE_EVENT_TIME_INVALID"
STATE_KEY_MISSING = "STATE_KEY_MISSING"


class FeatureError(Exception):
    """A field the feature spec reads is absent or ill-typed (Verdict: FEATURE_INVALID, a dead letter)."""

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
WINDOWED = ("count", "sum", "mean", "min", "max", "distinct")


def duration_ms(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", str(text))
    if m is None:
        raise ValueError(f"not a duration: {text!r}")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def compile_state(section):
    """The pipeline file's `state` section with every default applied (config/compile-state.ts does the same)."""
    default_sees = section.get("sees", "before")
    aggregates = []
    for name, spec in section["aggregates"].items():
        op = spec["op"]
        agg = {"name": name, "op": op}
        if op in WINDOWED:
            agg["window"] = duration_ms(spec["window"])
            agg["bucket"] = duration_ms(spec["bucket"]) if "bucket" in spec else agg["window"] // 60
            assert agg["window"] % agg["bucket"] == 0
            agg["n"] = agg["window"] // agg["bucket"]
            agg["field"] = spec.get("field")
            if op == "distinct":
                agg["max_distinct"] = spec.get("maxDistinct", 1000)
        elif op == "last":
            agg["field"] = spec["field"]
        agg["sees"] = spec.get("sees", default_sees) if op != "timeSince" else "before"
        aggregates.append(agg)
    windows = [a["window"] for a in aggregates if "window" in a]
    longest = max(windows) if windows else 0
    event_time = section["eventTime"]
    return {
        "field": event_time["field"],
        "unit": event_time.get("unit", "ms"),
        "lateness": duration_ms(section.get("allowedLateness", "1m")),
        "idle": duration_ms(section["idleAfter"]) if "idleAfter" in section else longest,
        "max_keys": section.get("maxKeysPerPartition", 100_000),
        "aggregates": aggregates,
    }


def get_path(event, path):
    """A dotted path's value; None when a step is missing (absent and null read the same here)."""
    value = event
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _present(event, path, what):
    """A dotted path's value for a feature; FeatureError when absent (null is a value here, as in features.ts)."""
    value = event
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise FeatureError(f"{what}: feature field {path!r} is missing")
        value = value[part]
    return value


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def js_string(v):
    """JavaScript's String(v) for a string, boolean or number."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == int(v) and abs(v) < 1e21:
        return str(int(v))
    r = repr(v)
    if "e" in r:  # Python: 1e-07, 1.5e+22; JavaScript: 1e-7, 1.5e+22
        mantissa, exp = r.split("e")
        sign = "-" if exp.startswith("-") else "+"
        r = f"{mantissa}e{sign}{int(exp.lstrip('+-'))}"
    return r


class _Bucket:
    __slots__ = ("count", "sum", "min", "max", "values")

    def __init__(self):
        self.count = 0
        self.sum = 0.0
        self.min = None
        self.max = None
        self.values = set()


class _Key:
    def __init__(self, definition):
        self.max_ts = None
        self.last_offset = -1
        # per aggregate: dict bucket index -> _Bucket (windowed) or [t, value] (last)
        self.aggs = [({} if a["op"] in WINDOWED else None) for a in definition["aggregates"]]


class PartitionState:
    """One input partition's per-key state. Pure: no clock, no I/O."""

    def __init__(self, definition):
        self.d = definition
        self.keys = OrderedDict()  # key -> _Key, least recently applied first
        self.w = None  # W_p: the greatest applied event time
        self.counts = {"late": 0, "idle": 0, "lru": 0, "outOfOrder": 0}  # outOfOrder: applied with t < the key's maxTs

    def _retained(self, key, agg, i):
        """Bucket indices of aggregate i still kept (retention is a pure function of the key's maxTs)."""
        floor_index = math.floor((key.max_ts - self.d["lateness"]) / agg["bucket"]) - agg["n"]
        return {b: v for b, v in key.aggs[i].items() if b > floor_index}

    def _read(self, key, t):
        values = {}
        for i, agg in enumerate(self.d["aggregates"]):
            op = agg["op"]
            if op == "timeSince":
                values[agg["name"]] = None if key is None or key.max_ts is None else max(0, t - key.max_ts) / 1000
                continue
            if op == "last":
                values[agg["name"]] = None if key is None or key.aggs[i] is None else key.aggs[i][1]
                continue
            buckets = []
            if key is not None:
                cur = math.floor(t / agg["bucket"])
                kept = self._retained(key, agg, i)
                buckets = [kept[b] for b in sorted(kept) if cur - agg["n"] < b <= cur]
            if op == "count":
                values[agg["name"]] = sum(b.count for b in buckets)
            elif op == "distinct":
                union = set()
                for b in buckets:
                    union |= b.values
                values[agg["name"]] = len(union)
            else:
                total = 0.0
                count = 0
                lo = hi = None
                for b in buckets:
                    total += b.sum
                    count += b.count
                    if b.min is not None:
                        lo = b.min if lo is None else min(lo, b.min)
                        hi = b.max if hi is None else max(hi, b.max)
                if op == "sum":
                    values[agg["name"]] = total
                elif op == "mean":
                    values[agg["name"]] = total / count if count else None
                elif op == "min":
                    values[agg["name"]] = lo
                else:
                    values[agg["name"]] = hi
        return values

    def _apply(self, key, t, event):
        for i, agg in enumerate(self.d["aggregates"]):
            op = agg["op"]
            if op == "timeSince":
                continue
            value = get_path(event, agg["field"]) if agg.get("field") else None
            if op == "last":
                if isinstance(value, (str, int, float, bool)) and (key.aggs[i] is None or t >= key.aggs[i][0]):
                    key.aggs[i] = [t, value]
                continue
            index = math.floor(t / agg["bucket"])
            if op == "count":
                if agg["field"] is not None and value is None:
                    continue
                key.aggs[i].setdefault(index, _Bucket()).count += 1
            elif op == "distinct":
                if not isinstance(value, (str, int, float, bool)):
                    continue
                s = js_string(value)
                kept = self._retained(key, agg, i)
                union = set()
                for b in kept.values():
                    union |= b.values
                if s not in union and len(union) >= agg["max_distinct"]:
                    continue
                key.aggs[i].setdefault(index, _Bucket()).values.add(s)
            else:
                if not is_number(value) or not math.isfinite(value):
                    continue
                b = key.aggs[i].setdefault(index, _Bucket())
                b.count += 1
                b.sum += float(value)
                b.min = value if b.min is None else min(b.min, value)
                b.max = value if b.max is None else max(b.max, value)
        # Retention: drop what no read can reach any more.
        for i, agg in enumerate(self.d["aggregates"]):
            if agg["op"] in WINDOWED:
                key.aggs[i] = self._retained(key, agg, i)

    def apply(self, offset, key, event):
        """One record: {"values": {...}} (what the event saw) or {"error": {"code": ...}} (not applied)."""
        if key is None:
            return {"error": {"code": STATE_KEY_MISSING}}
        raw = get_path(event, self.d["field"])
        if not is_number(raw) or not math.isfinite(raw) or raw < 0:
            return {"error": {"code": STATE_EVENT_TIME_INVALID}}
        t = raw * 1000 if self.d["unit"] == "s" else raw
        state = self.keys.get(key)
        # 1. idle: a key quiet for longer than idleAfter starts afresh.
        if state is not None and max(t, self.w if self.w is not None else t) - state.max_ts > self.d["idle"]:
            del self.keys[key]
            self.counts["idle"] += 1
            state = None
        # 2. late: not applied; read at t.
        if state is not None and t < state.max_ts - self.d["lateness"]:
            self.counts["late"] += 1
            return {"values": self._read(state, t)}
        if state is not None and t < state.max_ts:
            self.counts["outOfOrder"] += 1
        # 3. apply.
        before = self._read(state, t)
        if state is None:
            if len(self.keys) >= self.d["max_keys"]:
                self.keys.popitem(last=False)
                self.counts["lru"] += 1
            state = _Key(self.d)
            self.keys[key] = state
        else:
            self.keys.move_to_end(key)
        previous = state.max_ts
        state.max_ts = t if previous is None else max(previous, t)
        state.last_offset = offset
        self._apply(state, t, event)
        after = self._read(state, t)
        # timeSince reads the key's maxTs before this event, before and after alike.
        for agg in self.d["aggregates"]:
            if agg["op"] == "timeSince":
                after[agg["name"]] = before[agg["name"]]
        self.w = t if self.w is None else max(self.w, t)
        return {"values": {a["name"]: (after if a["sees"] == "after" else before)[a["name"]] for a in self.d["aggregates"]}}


# ---- the dense feature vector (pipeline/ingest/features.ts) ----------------------------------------------

def js_equal(a, b):
    """JavaScript's a === b for JSON values of the kinds features compare (strings, numbers, booleans)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) and is_number(b):
        return a == b
    return type(a) is type(b) and isinstance(a, str) and a == b


def _number(v, what):
    if not is_number(v) or not math.isfinite(v):
        raise FeatureError(f"{what}: not a finite number: {v!r}")
    return float(v)


class FeatureMapper:
    """The pipeline's `input.features.dense` spec, over an event and the state values it saw."""

    def __init__(self, spec):
        self.spec = spec
        self.columns = []
        for s in spec:
            if "oneHot" in s:
                self.columns += [f"{s['field']}={v}" for v in s["oneHot"]]
            elif "equalsField" in s:
                self.columns.append(f"{s.get('field', 'state.' + str(s.get('state')))}=={s['equalsField']}")
            else:
                name = s["field"] if "field" in s else f"state.{s['state']}"
                t = s.get("transform", "identity")
                self.columns.append(name if t == "identity" else f"{t}({name})")

    def map(self, event, state):
        row = []
        for s in self.spec:
            if "oneHot" in s:
                v = get_path(event, s["field"])
                if not isinstance(v, (str, int, float, bool)):
                    raise FeatureError(f"{s['field']}: not a string: {v!r}")
                key = js_string(v)
                row += [1.0 if key == c else 0.0 for c in s["oneHot"]]
            elif "equalsField" in s:
                if "state" in s:
                    other = _present(event, s["equalsField"], "equalsField")
                    v = state[s["state"]]
                    row.append(0.0 if v is None else (1.0 if js_equal(v, other) else 0.0))
                else:
                    a = _present(event, s["field"], "field")
                    other = _present(event, s["equalsField"], "equalsField")
                    row.append(1.0 if js_equal(a, other) else 0.0)
            else:
                t = s.get("transform", "identity")
                if "state" in s:
                    v = state[s["state"]]
                    if v is None:  # nothing to report: `missing`, written as is (not transformed)
                        row.append(float(s.get("missing", 0)))
                        continue
                else:
                    v = get_path(event, s["field"])
                what = str(s.get("field", s.get("state")))
                if t == "bool":
                    if not isinstance(v, bool) and not (is_number(v) and math.isfinite(v)):
                        raise FeatureError(f"{what}: not a boolean: {v!r}")
                    row.append(1.0 if v else 0.0)
                    continue
                x = _number(v, what)
                if t == "log1p" and x <= -1:
                    raise FeatureError(f"{what}: log1p of {x}")
                row.append(math.log1p(x) if t == "log1p" else x)
        return row
