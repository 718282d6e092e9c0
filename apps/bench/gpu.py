"""The accelerator benchmark (`benchmarks/gpu.sh`): the paper's model at the paper's length, in one run.

    python -m soundstorm.apps.bench.gpu [--preset paper] [--modules DIR] [--out gpu.json]

Runs where JAX has an accelerator and TensorFlow is absent (the lent H200); the same
code runs on a CPU with `--preset tiny` (tests/test_gpu_bench.py). Sections, in order
of what matters, each printed as it completes (a section that fails prints its error
and the rest still run; sections past `--deadline-seconds` are skipped and say so):

1. matmul rates: the best jitted square matmul in bfloat16 and in float32 (JAX's default
   precision: TF32 tensor cores on a GPU) — the ceilings the decode figures are read
   against;
2. decode: `decode` of the preset, `--seconds` of audio (3 s prompt included) at each
   batch size, float32 and bfloat16 compute: compile s, median s, audio s per s
   (batch x seconds / time), achieved FLOP/s (XLA's cost analysis of one forward pass x
   passes) as % of the bf16 matmul rate;
3. savedmodel_modules: the SavedModel's own StableHLO (extracted with
   `python -m soundstorm.export.extract`, run by export/module_runner.py on this
   device's lowering, e.g. CUDA) against JAX's `decode` of the same parameters on the
   same device and request: tokens equal (or the agreement rate) and both times;
4. bf16_agreement: bfloat16 against float32 compute on the extracted model's trained
   parameters (the reference model): tokens equal, logit differences;
5. autoregressive: an autoregressive decoder of the same size (soundstorm/autoregressive.py)
   at the same length, batch 1;
6. peer: lucidrains' soundstorm-pytorch at the same shape and schedule, on the same
   device (CUDA when PyTorch sees one).

Parameters of the preset are freshly initialised (cost does not depend on values).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import traceback
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from soundstorm.apps.bench.measure import forward_flops, machine, median_seconds
from soundstorm.config import ConfigError, SoundStormConfig, get_preset
from soundstorm.decoding import DecodingConfig, check_decode_inputs, decode
from soundstorm.model import init_params, param_count
from soundstorm.validation import InputError


@dataclasses.dataclass(frozen=True)
class GpuBenchConfig:
    preset: str = "paper"
    seconds: float = 30.0                   # total audio per request, prompt included (the paper's)
    prompt_seconds: float = 3.0             # the paper's prompt
    batches: tuple[int, ...] = (1, 4, 16)
    dtypes: tuple[str, ...] = ("float32", "bfloat16")
    repeats: int = 5
    ar_repeats: int = 1                     # the autoregressive decoder takes seconds a call
    modules: Path | None = None             # an export/extract.py folder
    matmul_sizes: tuple[int, ...] = (4096, 8192)
    deadline_seconds: float = 420.0         # sections starting later are skipped

    def __post_init__(self):
        if not 0 < self.prompt_seconds < self.seconds:
            raise InputError(f"the prompt ({self.prompt_seconds:g} s) must be shorter than the "
                             f"request ({self.seconds:g} s) and positive")
        if self.repeats < 1 or not self.batches or min(self.batches) < 1:
            raise InputError("repeats and batch sizes must be >= 1")


def frames_of(config: SoundStormConfig, seconds: float) -> int:
    """Frames of `seconds`, a whole number of semantic tokens."""
    per_token = config.frames_per_semantic_token
    return round(seconds * config.frame_rate_hz / per_token) * per_token


def decode_inputs(config: SoundStormConfig, batch: int, seconds: float, prompt_seconds: float,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """A generate request by input name (GENERATE_INPUTS): random tokens, full lengths."""
    rng = np.random.default_rng(seed)
    frames, prompt = frames_of(config, seconds), frames_of(config, prompt_seconds)
    return {
        "semantic_tokens": rng.integers(0, config.semantic_vocab_size,
                                        (batch, frames // config.frames_per_semantic_token),
                                        dtype=np.int32),
        "prompt_tokens": rng.integers(0, config.codebook_size, (batch, prompt, config.num_levels),
                                      dtype=np.int32),
        "prompt_lengths": np.full(batch, prompt, np.int32),
        "lengths": np.full(batch, frames, np.int32),
        "seeds": np.arange(batch, dtype=np.int32),
        "temperature": np.ones(batch, np.float32),
        "choice_temperature": np.full(batch, 4.5, np.float32)}


def jax_decoder(config: SoundStormConfig, params, inputs: dict, decoding: DecodingConfig):
    """A no-argument call of jitted `decode` on `inputs`, returning numpy tokens."""
    checked = check_decode_inputs(config, *inputs.values())
    return lambda: np.asarray(jax.block_until_ready(
        decode(params, *checked, config=config, decoding=decoding)))


def matmul_rate(dtype, sizes, repeats: int = 5) -> tuple[float, int]:
    """Best FLOP/s of a jitted square matmul in `dtype` over `sizes`, and its size."""
    best = (0.0, 0)
    matmul = jax.jit(jnp.matmul)
    for size in sizes:
        a = jax.random.normal(jax.random.key(0), (size, size), dtype)
        seconds = median_seconds(lambda: matmul(a, a).block_until_ready(), repeats)
        best = max(best, (2 * size ** 3 / seconds, size))
    return best


class GpuBench:
    def __init__(self, config: GpuBenchConfig, log: Callable[[str], None] = print):
        self.bench, self.log = config, log
        self.model_config = get_preset(config.preset)
        self.decoding = DecodingConfig.paper(self.model_config)
        self.results: dict = {"config": {k: str(v) if isinstance(v, Path) else v
                                         for k, v in dataclasses.asdict(config).items()}}
        self.started = time.perf_counter()
        self.bf16_rate = None
        self._params = None
        self._decode_s: dict[tuple[str, int], float] = {}

    @property
    def params(self):
        if self._params is None:
            self._params = init_params(self.model_config, jax.random.key(0))
        return self._params

    def run(self) -> dict:
        c = self.model_config
        header = (f"machine: {machine()}\npreset {self.bench.preset}: "
                  f"{param_count(c) / 1e6:.1f}M parameters, {c.num_layers} layers x "
                  f"{c.model_dim}, {c.num_levels} levels x {c.codebook_size}; schedule "
                  f"{list(self.decoding.level_schedule)} = {self.decoding.num_passes} passes; "
                  f"{self.bench.seconds:g} s requests ({self.bench.prompt_seconds:g} s prompt "
                  f"included); medians of {self.bench.repeats}")
        self.log(header)
        self.results["header"] = header
        for name in ("matmul", "decode", "savedmodel_modules", "bf16_agreement",
                     "autoregressive", "peer"):
            elapsed = time.perf_counter() - self.started
            if elapsed > self.bench.deadline_seconds:
                self.log(f"\n## {name}: skipped ({elapsed:.0f} s > the "
                         f"{self.bench.deadline_seconds:g} s deadline)")
                self.results[name] = {"skipped": "deadline"}
                continue
            self.log(f"\n## {name} (at {elapsed:.0f} s)")
            try:
                self.results[name] = getattr(self, name)()
            except Exception as error:  # one section's failure must not lose the others
                self.log(f"FAILED: {type(error).__name__}: {error}\n{traceback.format_exc()}")
                self.results[name] = {"error": f"{type(error).__name__}: {error}"}
        self.results["total_s"] = time.perf_counter() - self.started
        return self.results

    def matmul(self) -> dict:
        rates = {}
        for dtype in (jnp.bfloat16, jnp.float32):
            rate, size = matmul_rate(dtype, self.bench.matmul_sizes)
            rates[jnp.dtype(dtype).name] = {"flops": rate, "size": size}
            self.log(f"{jnp.dtype(dtype).name:>9} matmul: {rate / 1e12:8.1f} TFLOP/s "
                     f"({size}x{size}x{size})")
        self.bf16_rate = rates["bfloat16"]["flops"]
        return rates

    def decode(self) -> list[dict]:
        c, bench = self.model_config, self.bench
        frames = frames_of(c, bench.seconds)
        try:
            flops_per_example = forward_flops(c, self.params, frames) * self.decoding.num_passes
        except Exception as error:  # the timings still count without the FLOP rates
            self.log(f"no FLOP count ({type(error).__name__}: {error}); rates left out")
            flops_per_example = float("nan")
        rows = []
        self.log(f"{'dtype':>9} {'batch':>5} {'compile s':>9} {'decode s':>9} {'audio s/s':>10} "
                 f"{'TFLOP/s':>8} {'% bf16 matmul':>13}")
        for batch in bench.batches:  # batch 1 of every dtype first: the headline figure
            for dtype in bench.dtypes:
                config = c.replace(compute_dtype=dtype)
                run = jax_decoder(config, self.params, decode_inputs(config, batch, bench.seconds,
                                                                     bench.prompt_seconds),
                                  self.decoding)
                started = time.perf_counter()
                run()
                first = time.perf_counter() - started
                seconds = median_seconds(run, bench.repeats, warm_up=False)
                self._decode_s[dtype, batch] = seconds
                achieved = batch * flops_per_example / seconds
                share = achieved / self.bf16_rate if self.bf16_rate else float("nan")
                rows.append({"dtype": dtype, "batch": batch, "compile_s": first - seconds,
                             "decode_s": seconds, "audio_s_per_s": batch * bench.seconds / seconds,
                             "flops": batch * flops_per_example, "share_of_bf16_matmul": share})
                self.log(f"{dtype:>9} {batch:>5d} {first - seconds:>9.1f} {seconds:>9.3f} "
                         f"{batch * bench.seconds / seconds:>10.1f} {achieved / 1e12:>8.1f} "
                         f"{100 * share:>12.1f}%")
        return rows

    def _extracted(self):
        from soundstorm.export.module_runner import ExtractedModel
        if self.bench.modules is None:
            raise FileNotFoundError("no --modules folder (python -m soundstorm.export.extract)")
        return ExtractedModel.load(self.bench.modules)

    def _extracted_lengths(self, model) -> tuple[float, float]:
        """(total, prompt) seconds of the extracted model's requests: the bench's, within
        the export's limits (the module has no checks of its own)."""
        rate = model.config.frame_rate_hz
        return (min(self.bench.seconds, model.manifest["max_frames"] / rate),
                min(self.bench.prompt_seconds, model.manifest["max_prompt_frames"] / rate))

    def savedmodel_modules(self) -> dict:
        model = self._extracted()
        config, bench = model.config, self.bench
        params = {name: jnp.asarray(array) for name, array in model.params.items()}
        from soundstorm.export.module_runner import nested_parameters
        tree = nested_parameters(params)
        entry = model.manifest["modules"]["serving_default"]
        decoding = DecodingConfig(level_schedule=tuple(entry["level_schedule"]))
        seconds, prompt_seconds = self._extracted_lengths(model)
        inputs = decode_inputs(config, 1, seconds, prompt_seconds, seed=3)
        function = model.function("serving_default")
        ordered, ordered_inputs = model.arguments("serving_default", params, inputs)
        run_module = lambda: np.asarray(jax.block_until_ready(function(ordered, *ordered_inputs))[0])
        run_jax = jax_decoder(config, tree, inputs, decoding)
        module_tokens, jax_tokens = run_module(), run_jax()
        prompt = frames_of(config, prompt_seconds)
        agreement = float((module_tokens[:, prompt:] == jax_tokens[:, prompt:]).mean())
        module_s = median_seconds(run_module, bench.repeats, warm_up=False)
        jax_s = median_seconds(run_jax, bench.repeats, warm_up=False)
        device = jax.devices()[0]
        result = {"source": model.manifest["source"], "platform": device.platform,
                  "device": device.device_kind, "seconds": seconds,
                  "tokens_equal": bool(np.array_equal(module_tokens, jax_tokens)),
                  "generated_token_agreement": agreement, "module_s": module_s, "jax_s": jax_s,
                  "module_platforms": entry["platforms"]}
        self.log(f"{model.manifest['source']} serving_default ({', '.join(entry['platforms'])} "
                 f"lowered; run on {device.platform}, {device.device_kind}), {seconds:g} s batch 1: "
                 f"tokens equal to JAX's: {'yes' if result['tokens_equal'] else 'NO'} "
                 f"({100 * agreement:.2f}% of generated tokens agree); module {module_s:.3f} s, "
                 f"JAX {jax_s:.3f} s")
        return result

    def bf16_agreement(self) -> dict:
        from soundstorm.export.module_runner import nested_parameters
        from soundstorm.model import SoundStorm, frame_mask_from_lengths
        model = self._extracted()
        config = model.config
        tree = nested_parameters({k: jnp.asarray(v) for k, v in model.params.items()})
        seconds, prompt_seconds = self._extracted_lengths(model)
        decoding = DecodingConfig.paper(config)
        tokens, logits = {}, {}
        for dtype in ("float32", "bfloat16"):
            dtype_config = config.replace(compute_dtype=dtype)
            inputs = decode_inputs(dtype_config, 1, seconds, prompt_seconds, seed=5)
            tokens[dtype] = jax_decoder(dtype_config, tree, inputs, decoding)()
            frames = tokens[dtype].shape[1]
            logits[dtype] = np.asarray(jax.jit(SoundStorm(dtype_config).apply)(
                {"params": tree}, jnp.asarray(inputs["semantic_tokens"]),
                jnp.asarray(tokens["float32"]), frame_mask_from_lengths(
                    jnp.asarray(inputs["lengths"]), frames), jnp.zeros((1,), jnp.int32)),
                np.float32)
        prompt = frames_of(config, prompt_seconds)
        agree = float((tokens["float32"][:, prompt:] == tokens["bfloat16"][:, prompt:]).mean())
        difference = np.abs(logits["float32"] - logits["bfloat16"])
        argmax_agree = float((logits["float32"].argmax(-1) == logits["bfloat16"].argmax(-1)).mean())
        result = {"seconds": seconds, "generated_token_agreement": agree,
                  "logit_max_abs_difference": float(difference.max()),
                  "logit_rms_difference": float(np.sqrt((difference ** 2).mean())),
                  "logit_rms": float(np.sqrt((logits["float32"] ** 2).mean())),
                  "level1_argmax_agreement": argmax_agree}
        self.log(f"{model.manifest['source']}, {seconds:g} s: bf16 vs float32 generated tokens "
                 f"agree {100 * agree:.1f}%; level-1 logits on the float32 tokens: argmax agrees "
                 f"{100 * argmax_agree:.1f}%, RMS difference {result['logit_rms_difference']:.4f} "
                 f"(logit RMS {result['logit_rms']:.3f}), max {result['logit_max_abs_difference']:.3f}")
        return result

    def autoregressive(self) -> dict:
        from soundstorm import autoregressive as ar
        c, bench = self.model_config, self.bench
        inputs = decode_inputs(c, 1, bench.seconds, bench.prompt_seconds)
        prompt = frames_of(c, bench.prompt_seconds)
        ar_params = ar.init_params(c, jax.random.key(0))
        semantic, prompt_tokens = (jnp.asarray(inputs["semantic_tokens"]),
                                   jnp.asarray(inputs["prompt_tokens"]))
        run = lambda: jax.block_until_ready(ar.generate(ar_params, semantic, prompt_tokens, 0, 1.0,
                                                        config=c, prompt_frames=prompt))
        ar_s = median_seconds(run, bench.ar_repeats)
        ours = self._decode_s.get(("float32", 1))
        passes = (frames_of(c, bench.seconds) - prompt) * c.num_levels
        result = {"ar_s": ar_s, "ar_passes": passes, "soundstorm_s": ours,
                  "soundstorm_passes": self.decoding.num_passes,
                  "ar_over_soundstorm": ar_s / ours if ours else None}
        self.log(f"autoregressive, same size, {bench.seconds:g} s batch 1 float32: {passes} passes "
                 f"in {ar_s:.2f} s" + (f"; SoundStorm {self.decoding.num_passes} passes in "
                                       f"{ours:.3f} s: AR / SoundStorm {ar_s / ours:.0f}x"
                                       if ours else ""))
        return result

    def peer(self) -> dict:
        from soundstorm.apps.bench.peer import (PEER_VERSION, PeerMissing, build_peer,
                                                forward_passes, peer_generate)
        c, bench = self.model_config, self.bench
        try:
            import torch
            model = build_peer(c, self.decoding.level_schedule[0])
        except (PeerMissing, ImportError) as error:
            self.log(f"skipped: {error}")
            return {"skipped": str(error)}
        device = "cuda" if torch.cuda.is_available() else "cpu"
        model = model.to(device)
        inputs = decode_inputs(c, 1, bench.seconds, bench.prompt_seconds)
        frames = frames_of(c, bench.seconds)

        def run():
            out = peer_generate(model, inputs["semantic_tokens"], inputs["prompt_tokens"], frames,
                                device=device)
            if device == "cuda":
                torch.cuda.synchronize()
            return out

        passes = forward_passes(model, run)  # also the untimed first call
        peer_s = median_seconds(run, bench.repeats, warm_up=False)
        ours = self._decode_s.get(("float32", 1))
        result = {"peer_version": PEER_VERSION, "torch": torch.__version__, "device": device,
                  "peer_s": peer_s, "peer_passes": passes, "ours_s": ours,
                  "peer_over_ours": peer_s / ours if ours else None}
        self.log(f"soundstorm-pytorch {PEER_VERSION} (torch {torch.__version__}, {device}), "
                 f"{bench.seconds:g} s batch 1 float32: {passes} passes in {peer_s:.3f} s"
                 + (f"; ours {ours:.3f} s: peer / ours {peer_s / ours:.1f}x" if ours else ""))
        return result


def main(argv=None) -> None:
    defaults = GpuBenchConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default=defaults.preset, help="model preset (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=defaults.seconds,
                        help="audio per request, prompt included (default: %(default)s)")
    parser.add_argument("--prompt-seconds", type=float, default=defaults.prompt_seconds,
                        help="voice prompt within each request (default: %(default)s)")
    parser.add_argument("--batches", type=int, nargs="+", default=list(defaults.batches),
                        help="batch sizes (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=defaults.repeats,
                        help="timed calls per figure (default: %(default)s)")
    parser.add_argument("--modules", type=Path, default=None,
                        help="folder written by python -m soundstorm.export.extract")
    parser.add_argument("--matmul-sizes", type=int, nargs="+", default=list(defaults.matmul_sizes),
                        help="square matmul sizes for the rates (default: %(default)s)")
    parser.add_argument("--deadline-seconds", type=float, default=defaults.deadline_seconds,
                        help="skip sections that would start later (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    try:
        config = GpuBenchConfig(preset=args.preset, seconds=args.seconds,
                                prompt_seconds=args.prompt_seconds, batches=tuple(args.batches),
                                repeats=args.repeats, modules=args.modules,
                                matmul_sizes=tuple(args.matmul_sizes),
                                deadline_seconds=args.deadline_seconds)
        get_preset(config.preset)
    except (InputError, ConfigError) as error:
        parser.error(str(error))
    results = GpuBench(config).run()
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")
        print(f"\nfigures: {args.out}")


if __name__ == "__main__":
    main()
