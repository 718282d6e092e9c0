"""SavedModel against JAX on the same inputs: run time, first-call (compile) time, export time, size.

    .venv/bin/python benchmarks/export_speed.py [--workdir runs/small-speech] [--seconds 30]

In one run: exports the run's checkpoint (timed) to a temporary base path,
then in a fresh process loads the SavedModel and times, on one request of
`--seconds` of audio with a 3 s prompt, the JAX `decode` (jit) and the
SavedModel's serving_default alternately, `--repeats` times each (medians), and
their token agreement. First-call times come from two further fresh processes:
one calls the SavedModel cold, one replays the warm-up records first (as TF
Serving does at load) and then calls. With no --workdir, or a missing one, a
`small` model is trained for one step so there is a checkpoint to export
(speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path

import numpy as np

from soundstorm.apps.bench.export_timing import PROMPT_SECONDS, ensure_run, random_request, run_child, timed



def child_steady(model_dir: str, workdir: str, seconds: float, repeats: int) -> dict:
    """JAX vs SavedModel, alternating, in this (fresh) process."""
    import jax
    import tensorflow as tf
    from soundstorm.export.signatures import GENERATE_INPUTS
    from soundstorm.decoding import DecodingConfig, check_decode_inputs, decode
    from soundstorm.run_dir import RunDirectory

    config, params = RunDirectory(Path(workdir)).load()
    inputs = random_request(config, seconds)
    decoding = DecodingConfig.paper(config)
    checked = check_decode_inputs(config, *(inputs[name] for name in GENERATE_INPUTS))
    run_jax = lambda: np.asarray(jax.block_until_ready(
        decode(params, *checked, config=config, decoding=decoding)))
    loaded = tf.saved_model.load(model_dir)
    serving = loaded.signatures["serving_default"]
    tensors = {key: tf.constant(value) for key, value in inputs.items()}
    run_tf = lambda: serving(**tensors)["acoustic_tokens"].numpy()
    jax_first, jax_tokens = timed(run_jax)
    tf_first, tf_tokens = timed(run_tf)
    jax_times, tf_times = [], []
    for _ in range(repeats):
        jax_times.append(timed(run_jax)[0])
        tf_times.append(timed(run_tf)[0])
    logits_diff = _logits_difference(config, params, loaded, inputs)
    return {"logits_max_abs_diff": logits_diff[0], "logits_max_abs": logits_diff[1],
            "jax_first_s": jax_first, "savedmodel_first_s": tf_first,
            "jax_s": statistics.median(jax_times), "savedmodel_s": statistics.median(tf_times),
            "jax_times": jax_times, "savedmodel_times": tf_times,
            "token_agreement": float((jax_tokens == tf_tokens).mean()),
            "agreement_per_level": (jax_tokens == tf_tokens).mean(axis=(0, 1)).tolist()}


def _logits_difference(config, params, loaded, inputs) -> tuple[float, float]:
    """Max |SavedModel - JAX| of level-0 logits on the request's prompt + masked frames."""
    import tensorflow as tf
    from soundstorm.model import SoundStorm, frame_mask_from_lengths

    frames = inputs["lengths"][0]
    acoustic = np.full((1, frames, config.num_levels), config.mask_id, np.int32)
    prompt = inputs["prompt_lengths"][0]
    acoustic[:, :prompt] = inputs["prompt_tokens"][:, :prompt]
    levels = np.zeros(1, np.int32)
    saved = loaded.signatures["logits"](
        semantic_tokens=tf.constant(inputs["semantic_tokens"]), acoustic_tokens=tf.constant(acoustic),
        lengths=tf.constant(inputs["lengths"]), levels=tf.constant(levels))["logits"].numpy()
    expected = np.asarray(SoundStorm(config).apply(
        {"params": params}, inputs["semantic_tokens"], acoustic,
        frame_mask_from_lengths(inputs["lengths"], frames), levels))
    return float(np.abs(saved - expected).max()), float(np.abs(expected).max())


def child_first_call(model_dir: str, workdir: str, seconds: float, warm_up: bool) -> dict:
    """Load, optionally replay the warm-up records (as a server does), then time one request."""
    from soundstorm.runtime.savedmodel.servable import Servable
    from soundstorm.run_dir import RunDirectory

    config, _ = RunDirectory(Path(workdir)).read_config()
    load_s, servable = timed(lambda: Servable("soundstorm", 1, Path(model_dir)))
    warmup_s = servable.warm_up()[1] if warm_up else 0.0
    inputs = random_request(config, seconds)
    first_s, _ = timed(lambda: servable.run("serving_default", inputs))
    return {"load_s": load_s, "warmup_s": warmup_s, "first_call_s": first_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("runs/small-speech"))
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop", default="scan", choices=("scan", "unrolled"))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, model_dir, workdir = args.child[:3]
        if mode == "steady":
            result = child_steady(model_dir, workdir, args.seconds, args.repeats)
        else:
            result = child_first_call(model_dir, workdir, args.seconds, mode == "warm")
        print(json.dumps(result))
        return

    from soundstorm.export import ExportConfig, export_savedmodel
    workdir = ensure_run(args.workdir)
    base = Path(tempfile.mkdtemp(prefix="export-bench-"))
    export_config = ExportConfig(max_seconds=args.seconds, bucket_seconds=(args.seconds,),
                                 loop=args.loop)
    export_s, model_dir = timed(lambda: export_savedmodel(workdir, base, export_config, log=None))
    size = sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())
    variables = sum(p.stat().st_size for p in (model_dir / "variables").rglob("*"))
    common = [str(model_dir), str(workdir), "--seconds", str(args.seconds)]
    steady = run_child(__file__, ["--child", "steady", *common[:2], "--repeats",
                                  str(args.repeats), *common[2:]])
    cold = run_child(__file__, ["--child", "cold", *common])
    warm = run_child(__file__, ["--child", "warm", *common])

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"run: {workdir}; request: {args.seconds:g} s of audio, {PROMPT_SECONDS:g} s prompt, "
          f"batch 1, loop {args.loop}; medians of {args.repeats}")
    print(f"export time            {export_s:8.1f} s")
    print(f"SavedModel size        {size / 1e6:8.1f} MB (variables {variables / 1e6:.1f} MB, "
          f"saved_model.pb {(model_dir / 'saved_model.pb').stat().st_size / 1e6:.1f} MB)")
    print(f"JAX jit                {steady['jax_s']:8.2f} s  (runs {_fmt(steady['jax_times'])})")
    print(f"SavedModel             {steady['savedmodel_s']:8.2f} s  "
          f"(runs {_fmt(steady['savedmodel_times'])})")
    print(f"SavedModel / JAX       {steady['savedmodel_s'] / steady['jax_s']:8.3f} x")
    print(f"token agreement        {steady['token_agreement']:8.4f} "
          f"(per level {_fmt(steady['agreement_per_level'], '.3f')})")
    print(f"logits max |diff|      {steady['logits_max_abs_diff']:8.2e} "
          f"(largest |logit| {steady['logits_max_abs']:.1f})")
    print(f"first call, JAX        {steady['jax_first_s']:8.2f} s (compile + run)")
    print(f"first call, cold       {cold['first_call_s']:8.2f} s (load {cold['load_s']:.1f} s)")
    print(f"first call, warmed up  {warm['first_call_s']:8.2f} s (load {warm['load_s']:.1f} s, "
          f"warm-up replay {warm['warmup_s']:.1f} s)")


def _fmt(values, spec=".2f") -> str:
    return ", ".join(format(value, spec) for value in values)


if __name__ == "__main__":
    main()
