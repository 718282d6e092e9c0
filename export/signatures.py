"""The SavedModel's functions: jax2tf-converted decoding and forward pass behind in-graph checks.

Each signature is two tf.functions: an outer one with the TF Serving signature
(named, batch-first inputs) that runs `checks`, and an inner jit_compile one
that holds the jax2tf module (one XlaCallModule op, StableHLO lowered for every
platform asked for). Parameters are non-trainable tf.Variables of one
tf.Module, shared by all signatures and stored once in variables/.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow as tf
from jax.experimental import jax2tf

from export import checks
from export.config import ResolvedExport
from soundstorm.config import SoundStormConfig
from soundstorm.decoding import DecodingConfig, decode
from soundstorm.model import SoundStorm, frame_mask_from_lengths

# The inputs of every generate signature, in the order of the converted function's arguments.
GENERATE_INPUTS = ("semantic_tokens", "prompt_tokens", "prompt_lengths", "lengths", "seeds",
                   "temperature", "choice_temperature")


def _generate_specs(config: SoundStormConfig, frames: int | None, prompt_frames: int | None):
    semantic = None if frames is None else frames // config.frames_per_semantic_token
    return [
        tf.TensorSpec([None, semantic], tf.int32, name="semantic_tokens"),
        tf.TensorSpec([None, prompt_frames, config.num_levels], tf.int32, name="prompt_tokens"),
        tf.TensorSpec([None], tf.int32, name="prompt_lengths"),
        tf.TensorSpec([None], tf.int32, name="lengths"),
        tf.TensorSpec([None], tf.int32, name="seeds"),
        tf.TensorSpec([None], tf.float32, name="temperature"),
        tf.TensorSpec([None], tf.float32, name="choice_temperature"),
    ]


def jax_generate(config: SoundStormConfig, decoding: DecodingConfig):
    """The pure JAX function a generate signature converts: (params, *GENERATE_INPUTS) -> tokens."""
    def generate(params, semantic_tokens, prompt_tokens, prompt_lengths, lengths, seeds,
                 temperature, choice_temperature):
        # Seeds travel as int32 (TF Serving clients send int32/int64); decode keys them as uint32.
        return decode(params, semantic_tokens, prompt_tokens, prompt_lengths, lengths,
                      seeds.astype(jnp.uint32), temperature, choice_temperature,
                      config=config, decoding=decoding)
    return generate


def jax_logits(config: SoundStormConfig):
    """(params, semantic [B,S], acoustic [B,T,Q], lengths [B], levels [B]) -> logits [B,T,K]."""
    def logits(params, semantic_tokens, acoustic_tokens, lengths, levels):
        frame_mask = frame_mask_from_lengths(lengths, acoustic_tokens.shape[1])
        return SoundStorm(config).apply({"params": params}, semantic_tokens, acoustic_tokens,
                                        frame_mask, levels)
    return logits


def _non_empty(ops):
    return [op for op in ops if op is not None]


class _Untracked:
    """A plain object: tf.Module does not look inside it."""
    def __init__(self):
        self.compiled = {}


class SoundStormModule(tf.Module):
    """Variables and tf.functions of one export. Build, then hand to tf.saved_model.save."""

    def __init__(self, params, resolved: ResolvedExport):
        super().__init__(name="soundstorm")
        self.resolved = resolved
        dtype = tf.as_dtype(resolved.export.variables_dtype)
        self.params = tf.nest.map_structure(
            lambda array: tf.Variable(tf.cast(np.asarray(array), dtype), trainable=False),
            jax.tree_util.tree_map(np.asarray, params))
        # Signature name -> its inner jit_compile tf.function (for the TPU alias). Kept
        # outside the module's tracked attributes: saving them as module functions would
        # store every XlaCallModule a second time.
        self._untracked = _Untracked()

    @property
    def compiled(self) -> dict:
        return self._untracked.compiled

    def _float32_params(self):
        """The parameters as the JAX function takes them (a no-op cast for float32 storage)."""
        return tf.nest.map_structure(lambda variable: tf.cast(variable, tf.float32), self.params)

    def _convert(self, fn, polymorphic_shapes, constraints):
        return jax2tf.convert(fn, polymorphic_shapes=[None, *polymorphic_shapes],
                              polymorphic_constraints=constraints, with_gradient=False,
                              native_serialization_platforms=self.resolved.export.platforms)

    def generate_function(self, name: str, decoding: DecodingConfig, frames: int | None = None):
        """A generate signature; `frames` fixes the length (a TPU bucket), else any length."""
        config, resolved = self.resolved.model, self.resolved
        ratio, levels = config.frames_per_semantic_token, config.num_levels
        prompt_frames = None if frames is None else resolved.max_prompt_frames
        if frames is None:
            length_dims = ("(b, s)", f"(b, p, {levels})")
            # Bounds that let the lowering decide symbolic comparisons (the prompt is padded to
            # the full length inside decode); the checks enforce them at run time.
            constraints = (f"s <= {resolved.max_frames // ratio}", f"p <= {ratio}*s")
        else:
            length_dims = ("(b, _)", "(b, _, _)")
            constraints = ()
        converted = self._convert(jax_generate(config, decoding),
                                  (*length_dims, "(b,)", "(b,)", "(b,)", "(b,)", "(b,)"),
                                  constraints)
        @tf.function(autograph=False, jit_compile=True)
        def compiled(*inputs):
            return converted(self._float32_params(), *inputs)

        @tf.function(autograph=False, input_signature=_generate_specs(config, frames, prompt_frames))
        def generate(semantic_tokens, prompt_tokens, prompt_lengths, lengths, seeds, temperature,
                     choice_temperature):
            inputs = (semantic_tokens, prompt_tokens, prompt_lengths, lengths, seeds, temperature,
                      choice_temperature)
            assertions = checks.generate_checks(config, resolved.max_frames,
                                                resolved.max_prompt_frames, *inputs)
            if frames is not None:
                assertions += checks.fixed_shape_checks(config, frames, prompt_frames,
                                                        semantic_tokens, prompt_tokens)
            with tf.control_dependencies(_non_empty(assertions)):
                tokens = compiled(*inputs)
            return {"acoustic_tokens": tokens, "lengths": tf.identity(lengths)}

        self.compiled[name] = compiled
        return generate

    def logits_function(self):
        """Logits of one level for given tokens: the forward pass, for scoring and parity checks."""
        config, resolved = self.resolved.model, self.resolved
        ratio, levels = config.frames_per_semantic_token, config.num_levels
        converted = self._convert(jax_logits(config),
                                  ("(b, s)", f"(b, {ratio}*s, {levels})", "(b,)", "(b,)"),
                                  (f"s <= {resolved.max_frames // ratio}",))
        @tf.function(autograph=False, jit_compile=True)
        def compiled(*inputs):
            return converted(self._float32_params(), *inputs)

        @tf.function(autograph=False, input_signature=[
            tf.TensorSpec([None, None], tf.int32, name="semantic_tokens"),
            tf.TensorSpec([None, None, levels], tf.int32, name="acoustic_tokens"),
            tf.TensorSpec([None], tf.int32, name="lengths"),
            tf.TensorSpec([None], tf.int32, name="levels")])
        def logits(semantic_tokens, acoustic_tokens, lengths, levels):
            inputs = (semantic_tokens, acoustic_tokens, lengths, levels)
            with tf.control_dependencies(_non_empty(checks.logits_checks(
                    config, resolved.max_frames, *inputs))):
                return {"logits": compiled(*inputs)}

        self.compiled["logits"] = compiled
        return logits

    def metadata_function(self, contract_bytes: bytes, contract_json: str):
        """The model contract, once per example of `probe` (values ignored).

        It takes a batch-shaped input and answers batch-first because TF
        Serving's batching splits every signature's outputs along axis 0.
        """
        @tf.function(autograph=False,
                     input_signature=[tf.TensorSpec([None], tf.int32, name="probe")])
        def metadata(probe):
            batch = tf.shape(probe)[0:1]
            return {"contract": tf.fill(batch, tf.constant(contract_bytes)),
                    "contract_json": tf.fill(batch, tf.constant(contract_json))}
        return metadata
