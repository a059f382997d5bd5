"""Hand export of a binary sklearn GradientBoostingClassifier to ONNX.

There is no skl2onnx here, and the mapping is small: a binary GBC's log-odds are
    raw(x) = init_log_odds + learning_rate * sum_t tree_t(x)
which is exactly an `ai.onnx.ml` TreeEnsembleRegressor with aggregate SUM, base value init_log_odds and leaf
weights learning_rate * leaf_value, followed by a Sigmoid (sklearn's predict_proba is expit(raw)).

Thresholds need care. sklearn compares float32 features against float64 thresholds; ONNX stores float32
thresholds. Rounding a threshold to nearest float32 can land it on a feature value and flip that value's branch.
Rounding *down* to the largest float32 t <= threshold cannot: for a float32 x, x <= threshold iff x <= t.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper

BRANCH = "BRANCH_LEQ"
LEAF = "LEAF"


def float32_floor(values):
    """Largest float32 not above each float64 value."""
    t = np.asarray(values, dtype=np.float64).astype(np.float32)
    over = t.astype(np.float64) > values
    t[over] = np.nextafter(t[over], np.float32(-np.inf))
    return t


def base_log_odds(model, X):
    """The GBC's initial raw score (the log-odds of the training prior), read off its decision function."""
    trees = np.zeros(X.shape[0])
    for est in model.estimators_[:, 0]:
        trees += est.predict(X)
    base = model.decision_function(X) - model.learning_rate * trees
    if np.ptp(base) > 1e-9:
        raise ValueError("GBC init estimator is not constant; only the prior init is supported")
    return float(base[0])


def tree_arrays(model):
    """Flat per-node arrays over all trees, in the layout TreeEnsembleRegressor wants."""
    a = {k: [] for k in ("tree", "node", "feature", "value", "mode", "true", "false")}
    leaves = {"tree": [], "node": [], "weight": []}
    for t, est in enumerate(model.estimators_[:, 0]):
        tree = est.tree_
        left, right = tree.children_left, tree.children_right
        thresholds = float32_floor(tree.threshold)
        for i in range(tree.node_count):
            leaf = left[i] == -1
            a["tree"].append(t)
            a["node"].append(i)
            a["feature"].append(0 if leaf else int(tree.feature[i]))
            a["value"].append(0.0 if leaf else float(thresholds[i]))
            a["mode"].append(LEAF if leaf else BRANCH)
            # sklearn sends x <= threshold to the left child: that is the "true" branch of BRANCH_LEQ.
            a["true"].append(0 if leaf else int(left[i]))
            a["false"].append(0 if leaf else int(right[i]))
            if leaf:
                leaves["tree"].append(t)
                leaves["node"].append(i)
                leaves["weight"].append(float(model.learning_rate * tree.value[i][0][0]))
    return a, leaves


def export_gbt(model, X_sample, width, output_name="fraud_probability"):
    """Builds the ONNX model: features float[N,width] -> output_name float[N,1]."""
    nodes, leaves = tree_arrays(model)
    base = base_log_odds(model, X_sample)
    ensemble = helper.make_node(
        "TreeEnsembleRegressor", ["features"], ["log_odds"], domain="ai.onnx.ml",
        n_targets=1, aggregate_function="SUM", post_transform="NONE", base_values=[base],
        nodes_treeids=nodes["tree"], nodes_nodeids=nodes["node"], nodes_featureids=nodes["feature"],
        nodes_values=nodes["value"], nodes_modes=nodes["mode"],
        nodes_truenodeids=nodes["true"], nodes_falsenodeids=nodes["false"],
        nodes_missing_value_tracks_true=[0] * len(nodes["node"]),
        target_treeids=leaves["tree"], target_nodeids=leaves["node"],
        target_ids=[0] * len(leaves["node"]), target_weights=leaves["weight"],
    )
    sigmoid = helper.make_node("Sigmoid", ["log_odds"], [output_name])
    graph = helper.make_graph(
        [ensemble, sigmoid], "fraud_gbt",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", width])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["N", 1])],
    )
    onnx_model = helper.make_model(
        graph, producer_name="verdict-train",
        opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 3)],
    )
    onnx_model.ir_version = 8
    onnx.checker.check_model(onnx_model)
    return onnx_model, {"nodes": nodes, "leaves": leaves, "base": base}


def evaluate_export(arrays, X):
    """A numpy re-implementation of the exported ensemble in float32, to check the export before any runtime."""
    nodes, leaves, base = arrays["nodes"], arrays["leaves"], arrays["base"]
    X = X.astype(np.float32)
    tree_ids = np.asarray(nodes["tree"])
    raw = np.full(X.shape[0], base, dtype=np.float64)
    weight_of = {(t, n): w for t, n, w in zip(leaves["tree"], leaves["node"], leaves["weight"])}
    for t in np.unique(tree_ids):
        sel = tree_ids == t
        feat = np.asarray(nodes["feature"])[sel]
        thr = np.asarray(nodes["value"], dtype=np.float32)[sel]
        is_leaf = np.asarray(nodes["mode"])[sel] == LEAF
        left = np.asarray(nodes["true"])[sel]
        right = np.asarray(nodes["false"])[sel]
        at = np.zeros(X.shape[0], dtype=np.int64)
        while not is_leaf[at].all():
            go_left = X[np.arange(X.shape[0]), feat[at]] <= thr[at]
            nxt = np.where(go_left, left[at], right[at])
            at = np.where(is_leaf[at], at, nxt)
        raw += np.array([weight_of[(int(t), int(n))] for n in at])
    return 1.0 / (1.0 + np.exp(-raw))
