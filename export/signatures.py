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

from soundstorm.export import checks
from soundstorm.export.config import ResolvedExport
from soundstorm.export.shapes import bucket_generate_shapes, generate_shapes, logits_shapes
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


def _pad_to_bucket(config: SoundStormConfig, bucket: int, prompt_frames: int, semantic_tokens,
                   prompt_tokens):
    """Zero-pads int32 semantic tokens [b, s] to [b, bucket / frames_per_token] and the prompt
    [b, p, Q] to [b, prompt_frames, Q]. The values do not matter: `lengths` and
    `prompt_lengths` say what is real (decode masks the rest). Callers check s and p first
    (checks.bucket_checks, generate_checks)."""
    tokens = bucket // config.frames_per_semantic_token
    semantic = tf.pad(semantic_tokens, [[0, 0], [0, tokens - tf.shape(semantic_tokens)[1]]])
    prompt = tf.pad(prompt_tokens, [[0, 0], [0, prompt_frames - tf.shape(prompt_tokens)[1]],
                                    [0, 0]])
    return [tf.ensure_shape(semantic, [None, tokens]),
            tf.ensure_shape(prompt, [None, prompt_frames, config.num_levels])]


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

    def generate_function(self, name: str, decoding: DecodingConfig, bucket: int | None = None):
        """A generate signature: any length up to max_frames, or, with `bucket`, a TPU one.

        A bucket signature takes any length up to `bucket` frames and any prompt up to
        max_prompt_frames (semantic_tokens int32 [b, s <= bucket / frames_per_token],
        prompt_tokens int32 [b, p <= max_prompt_frames, Q]), pads both in TF (outside the
        compiled function) and returns acoustic_tokens int32 [b, s * frames_per_token, Q], so
        it answers as serving_default does for inputs padded to the bucket. Inputs past the
        bucket raise InvalidArgumentError from the checks before anything compiles. Its compiled function sees static shapes except the batch, so a TPU compiles one
        program per allowed batch size, and it is traced under the export's TPU matmul
        precision (ExportConfig.tpu_matmul_precision).
        """
        config, resolved = self.resolved.model, self.resolved
        ratio = config.frames_per_semantic_token
        shapes = (generate_shapes(config, resolved.max_frames) if bucket is None
                  else bucket_generate_shapes())
        converted = self._convert(jax_generate(config, decoding), shapes.inputs,
                                  shapes.constraints)
        precision = resolved.export.tpu_matmul_precision if bucket is not None else None
        compiled_specs = None
        if bucket is not None:
            compiled_specs = _generate_specs(config, bucket, resolved.max_prompt_frames)

        @tf.function(autograph=False, jit_compile=True, input_signature=compiled_specs)
        def compiled(*inputs):
            # jax2tf traces here, when the tf.function is traced: the precision applies then.
            with jax.default_matmul_precision(precision):
                return converted(self._float32_params(), *inputs)

        @tf.function(autograph=False, input_signature=_generate_specs(config, None, None))
        def generate(semantic_tokens, prompt_tokens, prompt_lengths, lengths, seeds, temperature,
                     choice_temperature):
            inputs = [semantic_tokens, prompt_tokens, prompt_lengths, lengths, seeds, temperature,
                      choice_temperature]
            assertions = checks.generate_checks(config, resolved.max_frames,
                                                resolved.max_prompt_frames, *inputs)
            if bucket is not None:
                assertions += checks.bucket_checks(config, bucket, semantic_tokens)
            with tf.control_dependencies(_non_empty(assertions)):
                if bucket is not None:
                    inputs[:2] = _pad_to_bucket(config, bucket, resolved.max_prompt_frames,
                                                semantic_tokens, prompt_tokens)
                tokens = compiled(*inputs)
            if bucket is not None:  # the frames asked for, as serving_default returns
                tokens = tokens[:, :tf.shape(semantic_tokens)[1] * ratio]
            return {"acoustic_tokens": tokens, "lengths": tf.identity(lengths)}

        self.compiled[name] = compiled
        return generate

    def logits_function(self):
        """Logits of one level for given tokens: the forward pass, for scoring and parity checks."""
        config, resolved = self.resolved.model, self.resolved
        levels = config.num_levels
        shapes = logits_shapes(config, resolved.max_frames)
        converted = self._convert(jax_logits(config), shapes.inputs, shapes.constraints)
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
