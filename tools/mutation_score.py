"""Mutation testing of the core with cosmic-ray: the share of planted bugs the tests catch.

    .venv/bin/python tools/mutation_score.py [--modules decoding masking ...] [--fresh]

For each module below, cosmic-ray (https://cosmic-ray.readthedocs.io) plants one
small change at a time (an operator, a comparison, a number, a condition), runs
that module's tests and records whether they failed (killed) or passed
(survived). Which tests run is chosen per mutant from a coverage map recorded
first (tools/mutation_tests.py): only the tests that execute the mutated
function, or none when no test does (the mutant survives without a run). It
works on a fresh copy of the working tree in WORK (default .mutation/, which git
ignores), so the checkout is never left mutated; sessions live in
WORK/<module>.sqlite, so an interrupted run resumes where it stopped.
Each mutant's outcome is also kept in the checkout, in
tools/mutation_outcomes/<module>.json (written every 30 s while a run goes on):
a module's run takes hours, and WORK is lost with the machine, so a new
session of an unchanged module starts from the outcomes recorded there and
runs only the mutants not yet run.
Prints killed / survived / equivalent per module, and writes the table to
OUT/scores.json and every survivor's diff to OUT/<module>-survivors.md
(OUT defaults to reports/mutation).

Too slow for CI on a 2-core machine (each mutant starts pytest, and JAX compiles):
run it by hand after changing a module or its tests. docs/testing.md says how to
read the result and what a new behaviour's test must show.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Tracked by git, unlike WORK: the outcomes outlive the machine that ran them.
OUTCOMES = ROOT / "tools" / "mutation_outcomes"


def venv_tool(name: str) -> str:
    """A command installed beside this Python (the `mutation` extra's cosmic-ray)."""
    return shutil.which(name, path=str(Path(sys.executable).parent)) or name


@dataclasses.dataclass(frozen=True)
class Target:
    source: str              # the module mutated, relative to the repository root
    tests: tuple[str, ...]   # pytest arguments that select its tests
    target_score: float      # the share of mutants the issue asks to be killed
    timeout_s: float = 600.0
    traced_by_jax: bool = True  # jit reuses traces: run every test after the selected ones
    # The trained-and-exported test fixtures never run this module: build them once, unmutated,
    # and let every mutant's pytest reuse them (tests/conftest.py, built_once).
    fixtures_reusable: bool = False


TARGETS = {
    "decoding": Target("soundstorm/decoding.py", ("tests/test_decoding.py",), 0.9),
    "masking": Target("soundstorm/masking.py", ("tests/test_masking.py",), 0.9),
    "export-checks": Target("export/checks.py", ("tests/test_export_checks.py",), 0.9),
    "model": Target("soundstorm/model.py", ("tests/test_model.py",), 0.8),
    "export-signatures": Target("export/signatures.py", ("tests/test_export.py",), 0.8, 1200.0),
    "serving-manager": Target("runtime/serving/manager.py", ("tests/test_serving.py",), 0.8,
                                 traced_by_jax=False, fixtures_reusable=True),
    "serving-batching": Target("runtime/serving/batching.py", ("tests/test_serving.py",), 0.8,
                                 traced_by_jax=False, fixtures_reusable=True),
    "client": Target("runtime/client/client.py", ("tests/test_client.py",), 0.8,
                     traced_by_jax=False, fixtures_reusable=True),
    "client-retries": Target("runtime/client/backends.py", ("tests/test_client.py",), 0.8,
                             traced_by_jax=False, fixtures_reusable=True),
    "recogniser-metrics": Target("apps/evaluation/asr.py", ("tests/test_asr.py",), 0.8,
                                 timeout_s=180.0, traced_by_jax=False),
}

# Operators left out, and why: replacing + with <<, ^ or ** (or a comparison with
# `is`) is not a bug anyone writes; what stays is the plausible kind: + and -,
# * and / and //, & and |, every comparison flipped or made inclusive, numbers
# off by one, conditions negated, `and`/`or` swapped, decorators removed.
EXCLUDED_OPERATORS = (
    r"core/ReplaceBinaryOperator_.*_(LShift|RShift|BitXor|Pow|Mod)$",
    r"core/ReplaceBinaryOperator_(LShift|RShift|BitXor|Pow|Mod)_.*$",
    r"core/ReplaceBinaryOperator_(Add|Sub|Mul|Div|FloorDiv)_(BitAnd|BitOr)$",
    r"core/ReplaceBinaryOperator_(BitAnd|BitOr)_(Add|Sub|Mul|Div|FloorDiv)$",
    r"core/ReplaceBinaryOperator_(Add|Sub)_(Mul|Div|FloorDiv)$",
    r"core/ReplaceBinaryOperator_(Mul|Div|FloorDiv)_(Add|Sub)$",
    r"core/ReplaceComparisonOperator_.*_(Is|IsNot)$",
    r"core/ReplaceUnaryOperator_.*_(Invert|Not)$",
    r"core/ReplaceUnaryOperator_Invert_.*$",
)


# Survivors shown to be equivalent: the change cannot alter any result. Each entry:
# (source, the line as written, the line as mutated, why). Matched on the stripped lines.
EQUIVALENT_MUTANTS = (
    ("soundstorm/decoding.py",
     "return np.where(iteration + 1 >= level_iterations, 0.0, share).astype(np.float32)",
     "return np.where(iteration + 1 == level_iterations, 0.0, share).astype(np.float32)",
     "iteration < level_iterations always, so iteration + 1 >= n and == n agree"),
    ("soundstorm/decoding.py",
     "if top_k is not None and top_k < logits.shape[-1]:",
     "if top_k is not None and top_k <= logits.shape[-1]:",
     "top_k equal to the codebook size keeps every code: the filter changes nothing"),
    ("soundstorm/decoding.py",
     "still_masked = target & (current == config.mask_id)",
     "still_masked = target & (current >= config.mask_id)",
     "tokens are codes (< codebook_size = mask_id) or the mask id, never above it"),
    ("soundstorm/decoding.py",
     "temperature, choice_temperature, *, config: SoundStormConfig,",
     "temperature, choice_temperature, /, config: SoundStormConfig,",
     "only how config may be passed changes; every caller names it"),
    ("soundstorm/decoding.py",
     "return sampled, jnp.take_along_axis(log_probs, sampled[..., None], axis=-1)[..., 0]",
     "return sampled, jnp.take_along_axis(log_probs, sampled[..., None], axis=-1)[..., 1]",
     "the axis has size 1 and JAX clamps an out-of-range index to it"),
    ("soundstorm/decoding.py",
     "current = jnp.take_along_axis(tokens, jnp.full((batch, num_frames, 1), level), "
     "axis=2)[..., 0]",
     "current = jnp.take_along_axis(tokens, jnp.full((batch, num_frames, 1), level), "
     "axis=2)[..., -1]",
     "the axis has size 1: index -1 is index 0"),
    *(("soundstorm/decoding.py",
       "return np.where(iteration + 1 >= level_iterations, 0.0, share).astype(np.float32)",
       f"return np.where({condition}, 0.0, share).astype(np.float32)",
       "the last iteration's share is cos(pi/2) = 6e-17, which floors to 0 masked anyway")
      for condition in ("iteration - 1 >= level_iterations", "iteration + 1 > level_iterations",
                        "iteration + 0 >= level_iterations")),
    ("soundstorm/decoding.py",
     "current = jnp.take_along_axis(tokens, jnp.full((batch, num_frames, 1), level), "
     "axis=2)[..., 0]",
     "current = jnp.take_along_axis(tokens, jnp.full((batch, num_frames, 2), level), "
     "axis=2)[..., 0]",
     "two copies of the same index: element 0 is the same token"),
    ("soundstorm/decoding.py",
     "current = jnp.take_along_axis(tokens, jnp.full((batch, num_frames, 1), level), "
     "axis=2)[..., 0]",
     "current = jnp.take_along_axis(tokens, jnp.full((batch, num_frames, 1), level), "
     "axis=2)[..., 1]",
     "the axis has size 1 and JAX clamps an out-of-range index to it"),
    ("soundstorm/decoding.py",
     "decoding: DecodingConfig | None = None) -> np.ndarray:",
     "decoding: DecodingConfig & None = None) -> np.ndarray:",
     "an annotation, never evaluated (from __future__ import annotations)"),
    ("soundstorm/decoding.py",
     '@functools.partial(jax.jit, static_argnames=("config", "decoding"))', "",
     "without jit, decode computes the same tokens, only slower"),
    ("soundstorm/decoding.py",
     "last = iteration + 1 >= level_iterations",
     "last = iteration + 1 == level_iterations",
     "iteration < level_iterations always, so iteration + 1 >= n and == n agree"),
    ("soundstorm/decoding.py", "scan_unroll: int = 1", "scan_unroll: int = 2",
     "unrolling lax.scan changes how the loop is compiled, not what it computes"),
    ("soundstorm/decoding.py",
     "sample_keys, choice_keys = split_keys[..., 0], split_keys[..., 1]",
     "sample_keys, choice_keys = split_keys[..., 0], split_keys[..., 2]",
     "the axis has size 2 and JAX clamps index 2 to 1"),
    ("soundstorm/decoding.py",
     "return sampled, jnp.take_along_axis(log_probs, sampled[..., None], axis=-1)[..., 0]",
     "return sampled, jnp.take_along_axis(log_probs, sampled[..., None], axis=-1)[..., -1]",
     "the axis has size 1: index -1 is index 0"),
    *(("soundstorm/masking.py",
       "token_nll = -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]",
       f"token_nll = -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., {index}]",
       "the axis has size 1: index -1 is index 0, and JAX clamps index 1 to it")
      for index in ("-1", "1")),
    ("soundstorm/masking.py",
     "/ sum(level_weights))", "* sum(level_weights))",
     "jax.random.choice normalises p, so scaling the weights draws the same levels"),
    *(("soundstorm/masking.py",
       "return jax.vmap(_mask_one, in_axes=(0, None, 0, 0, 0, None, None))(",
       f"return jax.vmap(_mask_one, in_axes={axes})(",
       "the keys and the lengths are 1-D ([B]): axis -1 is axis 0")
      for axes in ("(-1, None, 0, 0, 0, None, None)", "(0, None, 0, 0, -1, None, None)")),
    ("soundstorm/masking.py",
     "level_q_masked = in_target & (jax.random.uniform(token_key, (num_frames,)) < mask_ratio)",
     "level_q_masked = in_target & (jax.random.uniform(token_key, (num_frames,)) <= mask_ratio)",
     "a continuous uniform draw equals mask_ratio with probability 0 (2^-23 per token)"),
    ("soundstorm/masking.py",
     "masked = ((levels == level) & level_q_masked[:, None]) | ((levels > level) & "
     "in_target[:, None])",
     "masked = ((levels >= level) & level_q_masked[:, None]) | ((levels > level) & "
     "in_target[:, None])",
     "above the level every target frame is masked by the second term, and "
     "level_q_masked is a subset of in_target"),
    ("soundstorm/masking.py",
     "semantic_starts = jnp.arange(semantic.shape[0]) * config.frames_per_semantic_token",
     "semantic_starts = jnp.arange(semantic.shape[-1]) * config.frames_per_semantic_token",
     "semantic is 1-D inside the vmap: axis -1 is axis 0"),
    ("soundstorm/masking.py",
     "level_weights: tuple[float, ...] | None = None) -> MaskedBatch:",
     "level_weights: tuple[float, ...] & None = None) -> MaskedBatch:",
     "an annotation, never evaluated (from __future__ import annotations)"),
    ("soundstorm/masking.py",
     "unknown_semantic_prob: float = 0.0,", "unknown_semantic_prob: float = -1.0,",
     "bernoulli(p) is uniform < p: p = 0 and p = -1 both never hide the transcript"),
    *(("apps/evaluation/asr.py",
       'for block in iter(lambda: file.read(1 << 20), b""):',
       f'for block in iter(lambda: file.read({size}), b""):',
       "the sha256 of a file does not depend on the size of the blocks it is read in")
      for size in ("1 << 21", "1 << 19", "2 << 20")),
    ("apps/evaluation/asr.py",
     "def __init__(self, directory: Path | None = None, num_threads: int = 0):",
     "def __init__(self, directory: Path & None = None, num_threads: int = 0):",
     "an annotation, never evaluated (from __future__ import annotations)"),
    *(("soundstorm/model.py", before, after,
       "init_params's dummy inputs only give the parameters their shapes, which do not "
       "depend on the batch size")
      for before, after in (
          ("levels = jnp.zeros((1,), jnp.int32)", "levels = jnp.zeros((2,), jnp.int32)"),
          ("frame_mask = jnp.ones((1, num_frames), bool)",
           "frame_mask = jnp.ones((2, num_frames), bool)"),
          ("acoustic = jnp.zeros((1, num_frames, config.num_levels), jnp.int32)",
           "acoustic = jnp.zeros((2, num_frames, config.num_levels), jnp.int32)"),
          ("semantic = jnp.zeros((1, -(-num_frames // config.frames_per_semantic_token)), "
           "jnp.int32)",
           "semantic = jnp.zeros((2, -(-num_frames // config.frames_per_semantic_token)), "
           "jnp.int32)"))),
    *(("soundstorm/model.py", before, after,
       "init_params's dummy inputs only give the parameters their shapes, which depend on "
       "neither the batch size nor the number of frames")
      for before, after in (
          ("levels = jnp.zeros((1,), jnp.int32)", "levels = jnp.zeros((0,), jnp.int32)"),
          ("frame_mask = jnp.ones((1, num_frames), bool)",
           "frame_mask = jnp.ones((0, num_frames), bool)"),
          ("acoustic = jnp.zeros((1, num_frames, config.num_levels), jnp.int32)",
           "acoustic = jnp.zeros((0, num_frames, config.num_levels), jnp.int32)"),
          ("semantic = jnp.zeros((1, -(-num_frames // config.frames_per_semantic_token)), "
           "jnp.int32)",
           "semantic = jnp.zeros((0, -(-num_frames // config.frames_per_semantic_token)), "
           "jnp.int32)"),
          ("semantic = jnp.zeros((1, -(-num_frames // config.frames_per_semantic_token)), "
           "jnp.int32)",
           "semantic = jnp.zeros((1, -(-num_frames * config.frames_per_semantic_token)), "
           "jnp.int32)"),
          *(("def init_params(config: SoundStormConfig, rng: jax.Array, num_frames: int = 8):",
             f"def init_params(config: SoundStormConfig, rng: jax.Array, num_frames: int = {n}):")
            for n in (7, 9)))),
    ("soundstorm/model.py",
     "shapes = jax.eval_shape(lambda rng: init_params(config, rng), jax.random.key(0))",
     "shapes = jax.eval_shape(lambda rng: init_params(config, rng), jax.random.key(1))",
     "eval_shape gives shapes only: the key's value never matters"),
    *(("soundstorm/model.py",
       "return nn.DenseGeneral(c.model_dim, axis=(-2, -1), dtype=c.compute_dtype,",
       f"return nn.DenseGeneral(c.model_dim, axis=({axis}, -1), dtype=c.compute_dtype,",
       "the attended values are 4-D [B, T, H, Dh]: axis 2 is axis -2")
      for axis in ("2", "+2")),
    ("soundstorm/model.py",
     "shapes = jax.eval_shape(lambda rng: init_params(config, rng), jax.random.key(0))",
     "shapes = jax.eval_shape(lambda rng: init_params(config, rng), jax.random.key(-1))",
     "eval_shape gives shapes only: the key's value never matters"),
    ("export/checks.py",
     "def _in_range(name: str, values, low, high, where=None, high_text: str | None = None) "
     "-> list:",
     "def _in_range(name: str, values, low, high, where=None, high_text: str & None = None) "
     "-> list:",
     "an annotation, never evaluated (from __future__ import annotations)"),
    ("runtime/client/backends.py",
     "def __init__(self, target: str, model_name: str = \"soundstorm\", *, version: int | None = None,",
     "def __init__(self, target: str, model_name: str = \"soundstorm\", *, version: int & None = None,",
     "an annotation: with `from __future__ import annotations` it is never evaluated"),
    ("runtime/client/backends.py",
     "return _contract_from(self.generate({\"probe\": np.zeros(1, np.int32)}, \"metadata\"))",
     "return _contract_from(self.generate({\"probe\": np.zeros( 2, np.int32)}, \"metadata\"))",
     "the metadata signature answers the same contract once per probe; the first is read"),
    ("runtime/client/backends.py",
     "return model_contract_pb2.ModelContract.FromString(bytes(outputs[\"contract\"][0]))",
     "return model_contract_pb2.ModelContract.FromString(bytes(outputs[\"contract\"][ -1]))",
     "a one-element probe gets one contract: its first is its last"),
    ("runtime/client/backends.py",
     "return bool(host) and port.isdigit() and 0 < int(port) < 65536",
     "return bool(host) and port.isdigit() and 0 != int(port) < 65536",
     "the port is all digits (isdigit, checked first), never negative: 0 != is 0 <"),
    ("runtime/client/backends.py",
     '**({"retryPolicy": policy} if retries > 0 else {})}]})',
     '**({"retryPolicy": policy} if retries != 0 else {})}]})',
     "its one caller has checked retries to lie in [0, 4]: != 0 is > 0"),
    ("runtime/client/backends.py", "connect_seconds: float | None = None):",
     "connect_seconds: float & None = None):",
     "an annotation: with `from __future__ import annotations` it is never evaluated"),
    ("runtime/client/backends.py",
     "retries: int = DEFAULT_RETRIES, root_certificates: bytes | None = None,",
     "retries: int = DEFAULT_RETRIES, root_certificates: bytes & None = None,",
     "an annotation: with `from __future__ import annotations` it is never evaluated"),
    *(("runtime/serving/manager.py", line, line.replace("int | None", "int & None"),
       "an annotation: with `from __future__ import annotations` it is never evaluated")
      for line in ("def status(self, name: str, version: int | None = None",
                   "def resolve(self, name: str, version: int | None = None, label: str = \"\") "
                   "-> Servable:")),
    ("runtime/serving/manager.py", "on_change: Callable[[], None] | None = None,",
     "on_change: Callable[[], None] & None = None,",
     "an annotation: with `from __future__ import annotations` it is never evaluated"),
    ("runtime/serving/manager.py",
     "if len(set(names)) != len(names) or not all(names):",
     "if len(set(names)) < len(names) or not all(names):",
     "a set of the names is never longer than the list: != and < agree"),
    *(("runtime/serving/manager.py", before, after,
       "END is the last ModelVersionStatus state (50): >= END is == END")
      for before, after in (
          ("failed = {v for v, r in entry.versions.items() if r.state == State.END and r.error}",
           "failed = {v for v, r in entry.versions.items() if r.state >= State.END and r.error}"),
          ("if r.state == State.END and r.error and v not in on_disk]:",
           "if r.state >= State.END and r.error and v not in on_disk]:"))),
    *(("runtime/serving/manager.py", before, after,
       "loads are synchronous in the polling thread, so after them no record is START or "
       "LOADING, the only states below AVAILABLE")
      for before, after in (
          ("if any(entry.versions.get(v) and entry.versions[v].state == State.AVAILABLE",
           "if any(entry.versions.get(v) and entry.versions[v].state <= State.AVAILABLE"),
          ("if version not in aspired and record.state == State.AVAILABLE:",
           "if version not in aspired and record.state <= State.AVAILABLE:"))),
    *(("runtime/serving/manager.py", before, after,
       "only an END record keeps an error: loads run to their end inside a poll (no record is "
       "LOADING between polls) and a load that succeeds clears its error")
      for before, after in (
          ("if r.state == State.END and r.error and v not in on_disk]:",
           "if r.state <= State.END and r.error and v not in on_disk]:"),
          ("failed = {v for v, r in entry.versions.items() if r.state == State.END and r.error}",
           "failed = {v for v, r in entry.versions.items() if r.state <= State.END and r.error}"))),
    ("runtime/serving/manager.py", "if r.state == State.AVAILABLE}):",
     "if r.state <= State.AVAILABLE}):",
     "loads are synchronous in the polling thread, so between them no record is START or "
     "LOADING, the only states below AVAILABLE"),
    *(("runtime/serving/manager.py", "self._thread.join(timeout=10)",
       f"self._thread.join(timeout= {bound})",
       "how long stop() waits for a poll in flight before it returns anyway: only a poll "
       "of 9 to 11 s at shutdown tells these bounds apart")
      for bound in (9, 11)),
    *(("runtime/client/client.py", before, after,
       "an annotation: with `from __future__ import annotations` it is never evaluated")
      for before, after in (
          ("semantic_tokens=None, seed: int = 0, temperature: float | None = None,",
           "semantic_tokens=None, seed: int = 0, temperature: float & None = None,"),
          ("prompt_seconds: float | None = None) -> VoicePrompt:",
           "prompt_seconds: float & None = None) -> VoicePrompt:"),
          ("def embedded(cls, model_dir: str | Path, *, codec_dir: str | Path | None = None",
           "def embedded(cls, model_dir: str | Path, *, codec_dir: str & Path | None = None"),
          ("def embedded(cls, model_dir: str | Path, *, codec_dir: str | Path | None = None",
           "def embedded(cls, model_dir: str & Path, *, codec_dir: str | Path | None = None"),
          ("choice_temperature: float | None = None) -> list[Synthesis]:",
           "choice_temperature: float & None = None) -> list[Synthesis]:"),
          ("def synthesize(self, text: str | None = None, voice: VoicePrompt | None = None, *,",
           "def synthesize(self, text: str | None = None, voice: VoicePrompt & None = None, *,"),
          ("def _check_voice(self, voice: VoicePrompt | None) -> VoicePrompt:",
           "def _check_voice(self, voice: VoicePrompt & None) -> VoicePrompt:"))),
    ("runtime/client/client.py", "temperature, choice_temperature, timings)[0]",
     "temperature, choice_temperature, timings)[ -1]",
     "a window is one plan, so _generate returns one result: its first is its last"),
    ("runtime/client/client.py", "history_semantic = np.zeros(0, np.int32)",
     "history_semantic = np.zeros( 1, np.int32)",
     "only the history's tail is read, at most the frames generated after it (tail <= "
     "len(history) - 1 tokens), so a leading extra token is never reached"),
    ("runtime/serving/manager.py",
     "if self._stop.wait(max(self.load_retry_interval_s, 0)) or not path.is_dir():",
     "if self._stop.wait(max(self.load_retry_interval_s, -1)) or not path.is_dir():",
     "Event.wait returns at once for a negative timeout, as for 0"),
    ("runtime/serving/batching.py",
     "while size < self.options.max_batch_size:",
     "while size != self.options.max_batch_size:",
     "a batch never passes max_batch_size (a larger request is refused, one that would "
     "overflow opens the next batch): < and != agree"),
    *(("runtime/serving/batching.py",
       "first.inputs[key].ndim == task.inputs[key].ndim and", after,
       "inputs of another rank fail to merge before the model runs, and the batch's fallback "
       "runs each request alone: the same runs and results")
      for after in ("first.inputs[key].ndim <= task.inputs[key].ndim and",
                    "first.inputs[key].ndim >= task.inputs[key].ndim and")),
    ("runtime/serving/batching.py",
     "return np.pad(array, widths, constant_values=array.flat[0] if array.size else 0)",
     "return np.pad(array, widths, constant_values=array.flat[0] if array.size else 1)",
     "an empty input's padding lies past every example's length, which the SavedModel's "
     "per-example lengths exclude"),
    ("runtime/serving/batching.py", "if array.shape[1:] == shape:",
     "if array.shape[1:] > shape:",
     "`shape` is the largest in the batch, never below the array's; for an equal shape the "
     "padding by zero is the array itself"),
    ("runtime/serving/batching.py", "if remaining > 0.05:", "if remaining >= 0.05:",
     "a float time exactly 50 ms before the deadline: one more 50 ms step or none"),
    *(("runtime/serving/batching.py", before, after, why) for before, after, why in (
        ("shape = tuple(np.max([a.shape[1:] for a in arrays], axis=0)) if arrays[0].ndim > 1 \\",
         "shape = tuple(np.max([a.shape[1:] for a in arrays], axis=0)) if arrays[ -1].ndim > 1 \\",
         "a merged batch's inputs all have one rank (_mergeable), first or last alike"),
        ("shape = tuple(np.max([a.shape[1:] for a in arrays], axis=0)) if arrays[0].ndim > 1 \\",
         "shape = tuple(np.max([a.shape[1:] for a in arrays], axis=0)) if arrays[0].ndim >= 1 \\",
         "for 1-D inputs the maximum over empty shapes is the empty shape, the else branch's ()"),
        ("if array.shape[1:] == shape:", "if array.shape[ 2:] == shape:",
         "the early return skips a padding by zero; without it np.pad returns the same values"),
        ("def _next(self, timeout: float) -> _Task | None:",
         "def _next(self, timeout: float) -> _Task & None:",
         "an annotation: with `from __future__ import annotations` it is never evaluated"))),
    *(("runtime/serving/batching.py", before, after, why) for before, after, why in (
        ("return np.pad(array, widths, constant_values=array.flat[0] if array.size else 0)",
         "return np.pad(array, widths, constant_values=array.flat[0] if array.size else -1)",
         "an empty input's padding lies past every example's length, which the SavedModel's "
         "per-example lengths exclude"),
        ("return self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()",
         "return self._queue.get(timeout=timeout) if timeout >= 0 else self._queue.get_nowait()",
         "Queue.get with a timeout of 0 returns or raises Empty at once, as get_nowait does"),
        ("if len(batch) == 1:", "if len(batch) <= 1:", "a batch is never empty"),
        ("if array.shape[1:] == shape:", "if array.shape[ 0:] == shape:",
         "the early return skips a padding by zero; without it np.pad returns the same values"),
        ("timeout = self.options.batch_timeout_micros / 1e6",
         "timeout = self.options.batch_timeout_micros / 999999.0",
         "one part in a million of a batch timeout, below the scheduler's 50 ms waiting steps"),
        ("for key in batch[0].inputs:", "for key in batch[ -1].inputs:",
         "a batch's requests have one set of input names (_mergeable)"),
        ("if set(first.inputs) != set(task.inputs):", "if set(first.inputs) < set(task.inputs):",
         "a request with more inputs than the batch's first fails to merge (a missing key) "
         "before the model runs, and the fallback runs each request alone: the same runs"))),
    ("runtime/serving/batching.py", "if padded > examples:", "if padded >= examples:",
     "padding by 0 repeated rows changes nothing"),
    ("runtime/serving/batching.py",
     "if any(array.ndim == 0 for array in inputs.values()):",
     "if any(array.ndim <= 0 for array in inputs.values()):",
     "an array's rank is never negative: <= 0 is == 0"),
    ("runtime/serving/batching.py",
     "if len({array.shape[0] for array in inputs.values()}) != 1:",
     "if len({array.shape[0] for array in inputs.values()}) > 1:",
     "the inputs are not empty (checked just before), so the set of batch sizes has at "
     "least one: != 1 is > 1"),
    ("runtime/serving/batching.py", "if array.shape[1:] == shape:",
     "if array.shape[1:] >= shape:",
     "`shape` is the elementwise largest in the batch, so the array's shape is never "
     "lexicographically above it: >= is =="),
    ("runtime/serving/batching.py", "if padded > examples:", "if padded != examples:",
     "padded_batch_size never returns less than the examples it is given: != is >"),
    ("runtime/serving/batching.py",
     "remaining = 0.0 if self._closed.is_set() else deadline - time.monotonic()",
     "remaining = -1.0 if self._closed.is_set() else deadline - time.monotonic()",
     "a closing batcher's wait of 0 or -1 s is the same: no wait (get_nowait) and no "
     "further 50 ms step"),
    ("runtime/serving/batching.py",
     "first = pending or self._next(0.1)", "first = pending or self._next( 1.1)",
     "how long an idle scheduler blocks before it looks at close(): only how soon an idle "
     "batcher's thread ends, no request's result or timing"),
    ("runtime/serving/batching.py",
     "batch[0].future.set_exception(error)", "batch[ -1].future.set_exception(error)",
     "the branch runs for a batch of one: its first task is its last"),
    ("runtime/serving/batching.py",
     "shape = tuple(np.max([a.shape[1:] for a in arrays], axis=0)) if arrays[0].ndim > 1 \\",
     "shape = tuple(np.max([a.shape[1:] for a in arrays], axis=0)) if arrays[0].ndim != 1 \\",
     "inputs are batch-first (submit refuses scalars): ndim >= 1, so > 1 and != 1 agree"),
    ("runtime/serving/batching.py",
     "shape = tuple(np.max([a.shape[1:] for a in arrays], axis=0)) if arrays[0].ndim > 1 \\",
     "shape = tuple(np.max([a.shape[1:] for a in arrays], axis=0)) if arrays[0].ndim > 0 \\",
     "for 1-D inputs the maximum over empty shapes is the empty shape, the else branch's ()"),
    ("runtime/serving/batching.py",
     "options: BatchingOptions, on_batch: Callable[[int, int], None] | None = None):",
     "options: BatchingOptions, on_batch: Callable[[int, int], None] & None = None):",
     "an annotation: with `from __future__ import annotations` it is never evaluated"),
    ("runtime/serving/batching.py",
     "timeout = self.options.batch_timeout_micros / 1e6",
     "timeout = self.options.batch_timeout_micros / 1000001.0",
     "one part in a million of a batch timeout, below the scheduler's 50 ms waiting steps"),
    *(("export/signatures.py", f"@tf.function(autograph=False{rest}",
       f"@tf.function(autograph=True{rest}",
       "no signature function has Python control flow on tensors (each traces with autograph "
       "off), so autograph converts nothing and the graph is the same")
      for rest in (", input_signature=_generate_specs(config, None, None))",
                   ", jit_compile=True, input_signature=compiled_specs)",
                   ", jit_compile=True)", ", input_signature=[", ",")),
    *(("export/signatures.py", "batch = tf.shape(probe)[0:1]",
       f"batch = tf.shape(probe)[{bounds}]",
       "probe is rank 1 (its input signature), so its shape has one element: [0:2] and [-1:1] "
       "are [0:1]") for bounds in ("0:2", "-1:1")),
    *(("export/signatures.py", before, after,
       "an annotation: with `from __future__ import annotations` it is never evaluated")
      for before, after in (
          ("def generate_function(self, name: str, decoding: DecodingConfig, "
           "bucket: int | None = None):",
           "def generate_function(self, name: str, decoding: DecodingConfig, "
           "bucket: int & None = None):"),
          ("def _generate_specs(config: SoundStormConfig, frames: int | None, "
           "prompt_frames: int | None):",
           "def _generate_specs(config: SoundStormConfig, frames: int & None, "
           "prompt_frames: int | None):"),
          ("def _generate_specs(config: SoundStormConfig, frames: int | None, "
           "prompt_frames: int | None):",
           "def _generate_specs(config: SoundStormConfig, frames: int | None, "
           "prompt_frames: int & None):"))),
)


def changed_lines(diff: str) -> tuple[str, str]:
    """(removed, added) lines of a one-line mutant's diff, stripped."""
    removed = [line[1:].strip() for line in diff.splitlines()
               if line.startswith("-") and not line.startswith("---") and line[1:].strip()]
    added = [line[1:].strip() for line in diff.splitlines()
             if line.startswith("+") and not line.startswith("+++") and line[1:].strip()]
    return " / ".join(removed), " / ".join(added)


def equivalence(source: str, diff: str) -> str | None:
    """Why a survivor is equivalent, or None when it is not listed."""
    removed, added = changed_lines(diff)
    for path, before, after, why in EQUIVALENT_MUTANTS:
        same_after = after.replace(" ", "") == added.replace(" ", "")
        if path == source and before == removed and same_after:
            return why
    return None


def copy_tree(tree: Path, revision: str | None = None) -> None:
    """The working tree's files (tracked and new, not ignored), or a commit's, copied to `tree`."""
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    if revision is not None:
        archive = subprocess.run(["git", "archive", revision], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        # The test selector is this checkout's, whatever the commit had.
        (tree / "tools").mkdir(exist_ok=True)
        shutil.copy2(ROOT / "tools" / "mutation_tests.py", tree / "tools" / "mutation_tests.py")
        return
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name)


def write_config(target: Target, path: Path, test_map: Path) -> None:
    # The tests are chosen per mutant by tools/mutation_tests.py (coverage-guided).
    # The tests' own timeout is below cosmic-ray's, which kills only the command's process.
    command = (f"{sys.executable} tools/mutation_tests.py run --source {target.source} "
               f"--map {test_map} --timeout {0.9 * target.timeout_s:g}"
               + (" --then-all" if target.traced_by_jax else ""))
    excluded = ", ".join(json.dumps(pattern) for pattern in EXCLUDED_OPERATORS)
    path.write_text(
        "[cosmic-ray]\n"
        f'module-path = "{target.source}"\n'
        f"timeout = {target.timeout_s}\n"
        "excluded-modules = []\n"
        f'test-command = "{command}"\n'
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
        "[cosmic-ray.filters.operators-filter]\n"
        f"exclude-operators = [{excluded}]\n")


def results(session: Path) -> list[dict]:
    """The session's finished mutants (read from its database: `cosmic-ray dump` fails on
    the mutants the operator filter skipped, whose test outcome is empty)."""
    with sqlite3.connect(session) as db:
        rows = db.execute("select worker_outcome, test_outcome, diff from work_results")
        return [{"worker_outcome": worker, "test_outcome": test, "diff": diff}
                for worker, test, diff in rows]


def counts(rows: list[dict], total: int, source: str) -> dict:
    """Killed (incompetent mutants, which do not even import, count as killed), survived,
    equivalent; the score is killed / (run - equivalent)."""
    outcome = [str(row.get("test_outcome")).lower() for row in rows]
    equivalent = sum(1 for row, result in zip(rows, outcome)
                     if result == "survived" and equivalence(source, row.get("diff") or ""))
    killed = outcome.count("killed") + outcome.count("incompetent")
    scored = len(rows) - equivalent
    return {"mutants": total, "run": len(rows), "killed": killed,
            "survived": outcome.count("survived") - equivalent, "equivalent": equivalent,
            "score": killed / scored if scored else float("nan")}


def save_outcomes(session: Path, path: Path, source: str, digest: str) -> int:
    """Writes the session's finished mutants to `path` (JSON), each under its cosmic-ray
    operator and occurrence, which name the same mutant in any session of the same source
    (`digest`, its SHA-256). Returns how many were written."""
    with sqlite3.connect(session) as db:
        rows = db.execute(
            "select s.operator_name, s.occurrence, s.start_pos_row, r.worker_outcome, "
            "r.test_outcome, r.diff from work_results r join mutation_specs s "
            "on s.job_id = r.job_id where lower(r.worker_outcome) != 'skipped' "
            "order by s.start_pos_row, s.operator_name, s.occurrence").fetchall()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip() or None
    record = {"source": source, "sha256": digest, "tests_commit": head, "outcomes": [
        {"operator": operator, "occurrence": occurrence, "line": line,
         "worker_outcome": worker, "test_outcome": test, "diff": diff}
        for operator, occurrence, line, worker, test, diff in rows]}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(record, indent=1) + "\n")
    partial.replace(path)  # whole or not at all, even if the run is killed mid-write
    return len(rows)


def restore_outcomes(session: Path, path: Path, digest: str) -> int:
    """Enters the outcomes recorded in `path` into the session for every mutant it has not
    run, so that `exec` runs only the others; nothing when `path` is missing or was recorded
    for another version of the source (`digest`). Returns how many were entered."""
    if not path.exists():
        return 0
    record = json.loads(path.read_text())
    if record.get("sha256") != digest:
        print(f"mutation_score: {path.name} was recorded for another version of "
              f"{record.get('source')}: not used", flush=True)
        return 0
    recorded = {(row["operator"], row["occurrence"]): row for row in record["outcomes"]}
    with sqlite3.connect(session) as db:
        finished = {job for (job,) in db.execute("select job_id from work_results")}
        specs = db.execute("select job_id, operator_name, occurrence from mutation_specs")
        entered = [(row["worker_outcome"], None, row["test_outcome"], row["diff"], job)
                   for job, operator, occurrence in specs.fetchall()
                   if job not in finished and (row := recorded.get((operator, occurrence)))]
        db.executemany("insert into work_results (worker_outcome, output, test_outcome, diff, "
                       "job_id) values (?, ?, ?, ?, ?)", entered)
    return len(entered)


def _progress(session: Path, total: int, stop: threading.Event, name: str,
              save: Callable[[], int]) -> None:
    while not stop.wait(30):
        with sqlite3.connect(session) as db:
            done = db.execute("select count(*) from work_results "
                              "where lower(worker_outcome) != 'skipped'").fetchone()[0]
        save()
        print(f"  {name}: {done}/{total} mutants run", flush=True)


def run_target(name: str, target: Target, work: Path, out: Path, tree: Path, env: dict, *,
               outcomes: Path | None, retest_survivors: bool = False) -> dict:
    """Runs the module's mutants not yet run and returns its counts. `outcomes`: the JSON
    file that a new session starts from and that the run keeps up to date (None: neither)."""
    slug = name.replace("-", "_")
    config, session = work / f"{slug}.toml", work / f"{slug}.sqlite"
    digest = hashlib.sha256((tree / target.source).read_bytes()).hexdigest()
    test_map = work / f"{slug}.tests.json"
    cosmic_ray = venv_tool("cosmic-ray")
    if target.fixtures_reusable:
        # Fresh for each module's run: built by the first (unmutated) pytest run below.
        cache = work / "fixtures"
        shutil.rmtree(cache, ignore_errors=True)
        env = {**env, "SOUNDSTORM_TEST_FIXTURE_CACHE": str(cache)}
    write_config(target, config, test_map)
    if not test_map.exists():
        # Runs the unmutated tests once under coverage: they must pass (cosmic-ray's baseline).
        print(f"{name}: recording which tests execute each function", flush=True)
        recorded = subprocess.run([sys.executable, "tools/mutation_tests.py", "record",
                                   "--source", target.source, "--map", str(test_map), "--",
                                   *target.tests], cwd=tree, env=env)
        if recorded.returncode != 0:
            raise SystemExit(f"mutation_score: the unmutated tests of {name} fail; fix them first")
    if not session.exists():
        subprocess.run([cosmic_ray, "init", str(config), str(session)], cwd=tree, check=True,
                       env=env)
        subprocess.run([venv_tool("cr-filter-operators"), str(session), str(config)], cwd=tree,
                       check=True, env=env)
        if outcomes is not None:
            restored = restore_outcomes(session, outcomes, digest)
            print(f"{name}: {restored} outcomes taken from {outcomes}", flush=True)
    if retest_survivors:
        print(f"{name}: {forget_survivors(session, target.source)} survivors to try again",
              flush=True)

    def save() -> int:
        return save_outcomes(session, outcomes, target.source, digest) if outcomes else 0
    with sqlite3.connect(session) as db:
        total = db.execute("select count(*) from work_items").fetchone()[0]
        total -= db.execute("select count(*) from work_results "
                            "where lower(worker_outcome) = 'skipped'").fetchone()[0]
    stop = threading.Event()
    watcher = threading.Thread(target=_progress, args=(session, total, stop, name, save),
                               daemon=True)
    watcher.start()
    started = time.perf_counter()
    try:
        subprocess.run([cosmic_ray, "exec", str(config), str(session)], cwd=tree, check=True,
                       env=env)
    finally:
        stop.set()
        watcher.join()
        save()
    rows = [row for row in results(session)
            if str(row.get("worker_outcome")).lower() != "skipped"]
    with (out / f"{slug}-survivors.md").open("w") as report:
        report.write(f"# Surviving mutants of {target.source}\n\n")
        for row in rows:
            if str(row.get("test_outcome")).lower() == "survived":
                why = equivalence(target.source, row.get("diff") or "")
                report.write(f"equivalent: {why}\n" if why else "not killed:\n")
                report.write(f"```diff\n{row.get('diff', '')}\n```\n\n")
    return {**counts(rows, total, target.source), "minutes": (time.perf_counter() - started) / 60}


def forget_survivors(session: Path, source: str) -> int:
    """Marks the session's survivors not listed as equivalent as not yet run, so that `exec`
    tries them again (an equivalent mutant cannot be killed: running it again is wasted)."""
    with sqlite3.connect(session) as db:
        rows = db.execute("select job_id, diff from work_results "
                          "where lower(test_outcome) = 'survived'").fetchall()
        again = [(job,) for job, diff in rows if not equivalence(source, diff or "")]
        db.executemany("delete from work_results where job_id = ?", again)
        return len(again)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", nargs="+", choices=sorted(TARGETS), default=list(TARGETS))
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "mutation",
                        help="where the scores and the survivors' diffs go")
    parser.add_argument("--work", type=Path, default=ROOT / ".mutation",
                        help="the tree copy, the sessions and JAX's compilation cache "
                             "(git ignores .mutation/, and the BUILD checks skip it)")
    parser.add_argument("--revision", default=None,
                        help="mutate this commit's code and run its tests (e.g. to score the "
                             "tests of an earlier commit); default: the working tree")
    parser.add_argument("--tests", nargs="+", default=None,
                        help="pytest arguments that replace the modules' own tests (e.g. an "
                             "older commit's test files, with --revision)")
    parser.add_argument("--fresh", action="store_true",
                        help="start new sessions (needed once a mutated module changed)")
    parser.add_argument("--retest-survivors", action="store_true",
                        help="run the sessions' survivors again, against the current tests")
    args = parser.parse_args(argv)
    out, work = args.out.absolute(), args.work.absolute()
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    if args.revision is not None:
        work = work / args.revision
        out = out / args.revision
        out.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
    # Always a clean copy: an interrupted run leaves its last mutant in the copy's file.
    tree = work / "tree"
    copy_tree(tree, args.revision)
    for name in args.modules:
        slug = name.replace("-", "_")
        session, stamp = work / f"{slug}.sqlite", work / f"{slug}.sha256"
        digest = hashlib.sha256((tree / TARGETS[name].source).read_bytes()).hexdigest()
        if args.fresh:
            session.unlink(missing_ok=True)
        # The coverage map follows the tests, which may have changed since the last run.
        (work / f"{slug}.tests.json").unlink(missing_ok=True)
        if session.exists() and stamp.exists() and stamp.read_text() != digest:
            raise SystemExit(f"mutation_score: {TARGETS[name].source} changed since its session "
                             "began, so its mutants no longer fit: run again with --fresh")
        stamp.write_text(digest)
    # The tests import the copy (the working directory comes first on sys.path), and
    # JAX reuses compiled programs that a mutant did not change.
    # The tree copy sits under .mutation/, where the codec's default folder (../shared beside
    # the checkout) is not: name the checkout's.
    codec_dir = os.environ.get("SOUNDSTORM_CODEC_DIR",
                               str(ROOT.parent / "shared" / "codecs" / "lyra_v2"))
    env = {**os.environ, "SOUNDSTORM_CODEC_DIR": codec_dir, "PYTHONPATH": str(tree),
           "JAX_COMPILATION_CACHE_DIR": str(work / "jax-cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    table = {}
    for name in args.modules:
        target = TARGETS[name]
        if args.tests is not None:
            target = dataclasses.replace(target, tests=tuple(args.tests))
        missing = [test for test in target.tests if not (tree / test.split("::")[0]).exists()]
        if missing:
            raise SystemExit(f"mutation_score: {name}'s tests {missing} are not in the tree; "
                             "name the tests that were with --tests")
        print(f"{name}: mutating {target.source}", flush=True)
        # A commit's tests (--revision) are not the checkout's: their outcomes are not kept.
        slug = name.replace("-", "_")
        outcomes = None if args.revision is not None else OUTCOMES / f"{slug}.json"
        if args.fresh and outcomes is not None:
            outcomes.unlink(missing_ok=True)
        table[name] = run_target(name, target, work, out, tree, env, outcomes=outcomes,
                                 retest_survivors=args.retest_survivors)
    print(f"\n{'module':<20} {'mutants':>7} {'killed':>6} {'survived':>8} {'equivalent':>10} "
          f"{'score':>6} {'target':>6} {'minutes':>7}")
    for name, row in table.items():
        print(f"{name:<20} {row['mutants']:>7} {row['killed']:>6} {row['survived']:>8} "
              f"{row['equivalent']:>10} {row['score']:>6.1%} {TARGETS[name].target_score:>6.0%} "
              f"{row['minutes']:>7.1f}")
    # Merged with the modules of earlier runs, which are run one group at a time.
    scores = out / "scores.json"
    earlier = json.loads(scores.read_text()) if scores.exists() else {}
    scores.write_text(json.dumps({**earlier, **table}, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
