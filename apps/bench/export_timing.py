"""Pieces the export and serving benchmarks share: a run to export, a random request, a timer,
and a child process with fresh compile caches (benchmarks/export_speed.py, export_loop.py,
serving_speed.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROMPT_SECONDS = 3.0


def random_request(config, seconds: float, seed: int = 0, *,
                   prompt_frames: int | None = None) -> dict[str, np.ndarray]:
    """One generate request (batch 1) of `seconds` of audio with random tokens; the prompt is
    `prompt_frames` long (default PROMPT_SECONDS). Speed does not depend on the tokens."""
    rng = np.random.default_rng(seed)
    frames = round(seconds * config.frame_rate_hz)
    prompt = (round(PROMPT_SECONDS * config.frame_rate_hz) if prompt_frames is None
              else prompt_frames)
    return {
        "semantic_tokens": rng.integers(0, config.semantic_vocab_size,
                                        (1, frames // config.frames_per_semantic_token), np.int32),
        "prompt_tokens": rng.integers(0, config.codebook_size, (1, prompt, config.num_levels),
                                      np.int32),
        "prompt_lengths": np.array([prompt], np.int32), "lengths": np.array([frames], np.int32),
        "seeds": np.array([seed], np.int32), "temperature": np.ones(1, np.float32),
        "choice_temperature": np.full(1, 4.5, np.float32)}


def timed(fn):
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def run_child(script: str, arguments: list[str]) -> dict:
    """Runs `script arguments...` in a fresh process (fresh compile caches); its last line is JSON."""
    output = subprocess.run([sys.executable, script, *arguments], check=True,
                            capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def ensure_run(workdir: Path | None) -> Path:
    """`workdir` if it holds a run, else a `small` model trained for one step in a temporary
    folder (export and serving speed do not depend on the weights)."""
    from soundstorm.run_dir import RunDirectory
    if workdir is not None and RunDirectory(workdir).config_file.is_file():
        return workdir
    from soundstorm.config import get_preset
    from soundstorm.synthetic import synthetic_batches
    from soundstorm.config import TrainConfig
    from soundstorm.train import Trainer
    workdir = Path(tempfile.mkdtemp(prefix="export-bench-run-"))
    print(f"no run given: training the small preset for 1 step in {workdir}")
    config = get_preset("small")
    Trainer(config, TrainConfig(batch_size=1, total_steps=1, warmup_steps=0), workdir).run(
        synthetic_batches(config, 1, 100), progress=False)
    return workdir
