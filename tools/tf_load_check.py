"""Load jax2tf SavedModels the way TF Serving does (TF1 Session) and run serving_default once.

Usage: python tools/tf_load_check.py --out DIR [--reference DIR] NAME=SAVEDMODEL_DIR [NAME=DIR ...]

Prints tf.__version__, the XlaCallModule calling-convention range, and for each
model: loads yes/no, runs yes/no (first line of any error), and - if --reference
holds the arrays written by the TF 2.21 run - whether acoustic_tokens are equal.
Outputs are saved as DIR/<name>_P<p>.npy; a summary goes to DIR/result.json.
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

S = 250
# (prompt frames sent, prompt_lengths). The model asserts prompt_tokens has at
# least one frame ("send prompt_lengths 0 for no prompt"), so P=0 is sent as
# one dummy frame with prompt_lengths 0.
PROMPTS = {"P0": (1, 0), "P10": (10, 10)}
SKIP = ("Graph execution error:", "Instructions for updating:")


def first_line(exc):
    """First informative line of an error (skips TF's 'Graph execution error:' header)."""
    prefix = f"{type(exc).__name__}: "
    for line in str(exc).splitlines():
        line = line.strip()
        if line and line not in SKIP:
            return (prefix + line)[:400]
    return (prefix + str(exc))[:400]


def feeds_for(sig, p, plen):
    tokens = np.full((1, S), 5, np.int32)
    prompt = (np.arange(p * 8, dtype=np.int32).reshape(1, p, 8) * 7) % 256
    values = {
        "semantic_tokens": tokens,
        "prompt_tokens": prompt.astype(np.int32),
        "prompt_lengths": np.array([plen], np.int32),
        "lengths": np.array([S], np.int32),
        "seeds": np.array([0], np.int32),
        "temperature": np.array([1.0], np.float32),
        "choice_temperature": np.array([2.0], np.float32),
    }
    feed = {}
    for key, info in sig.inputs.items():
        want = tf.dtypes.as_dtype(info.dtype).as_numpy_dtype
        assert values[key].dtype == want, (key, values[key].dtype, want)
        feed[info.name] = values[key]
    return feed


def call_module_info(meta_graph):
    """(version, platforms) of every XlaCallModule node in the graph's functions."""
    found = []
    nodes = list(meta_graph.graph_def.node)
    for fn in meta_graph.graph_def.library.function:
        nodes.extend(fn.node_def)
    for node in nodes:
        if node.op == "XlaCallModule":
            found.append(int(node.attr["version"].i))
    return sorted(set(found)), len(found)


def check_model(name, path, out, reference):
    row = {"loads": False, "load_error": None, "runs": {}, "equal": {}}
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as sess:
        try:
            t0 = time.time()
            meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
            row["loads"] = True
            row["load_s"] = round(time.time() - t0, 1)
        except Exception as exc:  # noqa: BLE001
            row["load_error"] = first_line(exc)
            print(f"[{name}] load FAILED: {row['load_error']}", flush=True)
            return row
        versions, count = call_module_info(meta)
        row["xla_call_module_versions"] = versions
        row["xla_call_module_nodes"] = count
        print(f"[{name}] loaded in {row['load_s']}s; XlaCallModule versions {versions} ({count} nodes)", flush=True)
        sig = meta.signature_def["serving_default"]
        fetch = sig.outputs["acoustic_tokens"].name
        for key, (p, plen) in PROMPTS.items():
            try:
                t0 = time.time()
                result = sess.run(fetch, feed_dict=feeds_for(sig, p, plen))
                row["runs"][key] = {"ok": True, "s": round(time.time() - t0, 1),
                                    "shape": list(result.shape)}
                np.save(os.path.join(out, f"{name}_{key}.npy"), result)
                print(f"[{name}] {key} ran in {row['runs'][key]['s']}s shape {result.shape}", flush=True)
            except Exception as exc:  # noqa: BLE001
                row["runs"][key] = {"ok": False, "error": first_line(exc)}
                print(f"[{name}] {key} run FAILED: {row['runs'][key]['error']}", flush=True)
                continue
            if reference:
                ref_path = os.path.join(reference, f"{name}_{key}.npy")
                if os.path.exists(ref_path):
                    ref = np.load(ref_path)
                    equal = ref.shape == result.shape and bool(np.array_equal(ref, result))
                    row["equal"][key] = equal
                    if not equal and ref.shape == result.shape:
                        row["equal"][key + "_mismatch_fraction"] = float(np.mean(ref != result))
                    print(f"[{name}] {key} equal to reference: {equal}", flush=True)
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--reference")
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    summary = {"tf_version": tf.__version__, "python": sys.version.split()[0],
               "numpy": np.__version__}
    print("tf.__version__:", tf.__version__, flush=True)
    try:
        from tensorflow.compiler.tf2xla.python import xla as tfxla
    except Exception as exc:  # noqa: BLE001
        tfxla = None
        summary["tfxla_import_error"] = first_line(exc)
    for which in ("maximum", "minimum"):
        fn_name = f"call_module_{which}_supported_version"
        fn = getattr(tfxla, fn_name, None) if tfxla is not None else None
        summary[fn_name] = fn() if fn is not None else "function absent"
        print(f"{fn_name}: {summary[fn_name]}", flush=True)

    summary["models"] = {}
    for spec in args.models:
        name, path = spec.split("=", 1)
        summary["models"][name] = check_model(name, path, args.out, args.reference)
    with open(os.path.join(args.out, "result.json"), "w") as fh:
        json.dump(summary, fh, indent=1)
    print(json.dumps(summary, indent=1), flush=True)


if __name__ == "__main__":
    main()
