"""The symbolic shapes each signature's jax2tf module is lowered with (jax2tf's polymorphic_shapes).

One place for them: export/signatures.py lowers with these, and export/extract.py
records them beside each extracted module so that a runner without TensorFlow
(export/module_runner.py) can call the module with the same symbols. Imports
nothing heavier than the model config.
"""

from __future__ import annotations

import dataclasses

from soundstorm.config import SoundStormConfig


@dataclasses.dataclass(frozen=True)
class ModuleShapes:
    inputs: tuple[str, ...]        # one jax2tf shape spec per input, "_" = static
    outputs: tuple[str, ...]       # the results' shapes in the same symbols
    constraints: tuple[str, ...]   # jax.export symbolic constraints ("s <= 1500")


def generate_shapes(config: SoundStormConfig, max_frames: int) -> ModuleShapes:
    """A shape-polymorphic generate signature (inputs in GENERATE_INPUTS order): b requests
    of s semantic tokens, prompts of p frames; acoustic tokens [b, ratio * s, Q] out.

    The bounds let the lowering decide symbolic comparisons (the prompt is padded to the
    full length inside decode); the in-graph checks enforce them at run time.
    """
    ratio, levels = config.frames_per_semantic_token, config.num_levels
    return ModuleShapes(("(b, s)", f"(b, p, {levels})", "(b,)", "(b,)", "(b,)", "(b,)", "(b,)"),
                        (f"(b, {ratio}*s, {levels})",),
                        (f"s <= {max_frames // ratio}", f"p <= {ratio}*s"))


def bucket_generate_shapes() -> ModuleShapes:
    """A TPU bucket signature's compiled function: static shapes except the batch."""
    return ModuleShapes(("(b, _)", "(b, _, _)", "(b,)", "(b,)", "(b,)", "(b,)", "(b,)"),
                        ("(b, _, _)",), ())


def logits_shapes(config: SoundStormConfig, max_frames: int) -> ModuleShapes:
    """The logits signature: semantic_tokens [b, s], acoustic_tokens [b, ratio * s, Q],
    lengths [b], levels [b] -> logits [b, ratio * s, K]."""
    ratio = config.frames_per_semantic_token
    return ModuleShapes(("(b, s)", f"(b, {ratio}*s, {config.num_levels})", "(b,)", "(b,)"),
                        (f"(b, {ratio}*s, {config.codebook_size})",),
                        (f"s <= {max_frames // ratio}",))
