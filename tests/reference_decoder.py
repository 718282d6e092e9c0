"""An independent, slow reference of SoundStorm's decoding, for tests only.

Written from the papers' description, in plain NumPy and one example at a time,
sharing no code with `soundstorm.decoding` (Borsos et al. 2023, section 3.3;
Chang et al. 2022, MaskGIT, section 3.2):

  for each RVQ level q, coarse to fine, with n_q iterations:
    for iteration i = 0 .. n_q - 1:
      run the network on the current tokens (level q asked for);
      sample a code for every frame, from softmax(logits / temperature)
        (restricted to the top k codes when top_k is set); on the level's last
        iteration take the argmax instead (greedy);
      among the still-masked target frames, score each sampled code by its
        log-probability + choice_temperature * (1 - (i + 1) / n_q) * Gumbel noise;
      after the last iteration nothing stays masked; otherwise
        floor(N * cos(pi/2 * (i + 1) / n_q)) stay masked, N = the number of target
        frames (valid frames after the prompt), but at least one is revealed;
      reveal the most confident ones.
  Prompt frames are copied and never touched; frames past the length are 0.

The noise is an input: `DecoderNoise` draws it with the same contract as the
decoder (one stream per seed, level, iteration and frame), so the reference and
the JAX decoder can be compared token for token.
"""

from __future__ import annotations

import math

import jax
import numpy as np


class DecoderNoise:
    """Gumbel noise of one example: a stream per (seed, level, iteration, frame).

    The contract `soundstorm.decoding` documents: key = fold_in of seed, then
    level, then iteration, then frame; split in two; Gumbel(K) for the sample,
    Gumbel() for the choice.
    """

    def __init__(self, seed: int, codebook_size: int, num_frames: int):
        self.seed, self.codebook_size, self.num_frames = int(seed), codebook_size, num_frames
        self._drawn = {}

    def _draw(self, level: int, iteration: int):
        """(sample noise [T, K], choice noise [T]) of every frame, drawn once."""
        if (level, iteration) not in self._drawn:
            key = jax.random.fold_in(jax.random.fold_in(jax.random.key(np.uint32(self.seed)),
                                                        level), iteration)

            def frame_noise(frame):
                sample_key, choice_key = jax.random.split(jax.random.fold_in(key, frame))
                return (jax.random.gumbel(sample_key, (self.codebook_size,)),
                        jax.random.gumbel(choice_key, ()))

            sample, choice = jax.vmap(frame_noise)(np.arange(self.num_frames))
            self._drawn[level, iteration] = (np.asarray(sample, np.float64),
                                             np.asarray(choice, np.float64))
        return self._drawn[level, iteration]

    def sample(self, level: int, iteration: int, frame: int) -> np.ndarray:
        """Gumbel noise [K] added to the scaled logits when sampling."""
        return self._draw(level, iteration)[0][frame]

    def choice(self, level: int, iteration: int, frame: int) -> float:
        """Gumbel noise added to the confidence of the sampled code."""
        return float(self._draw(level, iteration)[1][frame])


def _log_softmax(x: np.ndarray) -> np.ndarray:
    finite = x[np.isfinite(x)]
    shifted = x - finite.max()
    return shifted - math.log(np.exp(shifted[np.isfinite(shifted)]).sum())


def reference_decode(logits_fn, prompt_tokens: np.ndarray, prompt_length: int, length: int,
                     num_frames: int, schedule, *, mask_id: int, noise: DecoderNoise,
                     temperature: float = 1.0, choice_temperature: float = 4.5,
                     top_k: int | None = None) -> np.ndarray:
    """Decodes one example; returns tokens [num_frames, Q] (int64).

    logits_fn(tokens [num_frames, Q], level) -> logits [num_frames, K]: the
    network on the current tokens. prompt_tokens [P, Q], of which the first
    prompt_length frames are the prompt; frames [prompt_length, length) are
    generated. schedule: iterations per level.
    """
    num_levels = prompt_tokens.shape[1]
    tokens = np.full((num_frames, num_levels), mask_id, np.int64)
    tokens[:prompt_length] = prompt_tokens[:prompt_length]
    targets = list(range(prompt_length, length))
    for level, iterations in enumerate(schedule):
        for iteration in range(iterations):
            last = iteration == iterations - 1
            logits = np.asarray(logits_fn(tokens.copy(), level), np.float64)
            masked = [t for t in targets if tokens[t, level] == mask_id]
            candidates = {}
            for t in masked:
                scaled = logits[t] / temperature
                if top_k is not None and top_k < scaled.size:
                    kth = np.sort(scaled)[-top_k]
                    scaled = np.where(scaled < kth, -np.inf, scaled)
                noisy = scaled if last else scaled + noise.sample(level, iteration, t)
                code = int(np.argmax(noisy))
                log_prob = float(_log_softmax(scaled)[code])
                annealing = choice_temperature * (1 - (iteration + 1) / iterations)
                candidates[t] = (code, log_prob + annealing * noise.choice(level, iteration, t))
            if last:
                stay_masked = 0
            else:
                scheduled = math.floor(len(targets) * math.cos(math.pi / 2 * (iteration + 1)
                                                               / iterations))
                stay_masked = min(scheduled, max(len(masked) - 1, 0))
            by_confidence = sorted(masked, key=lambda t: candidates[t][1], reverse=True)
            for t in by_confidence[:len(masked) - stay_masked]:
                tokens[t, level] = candidates[t][0]
    tokens[length:] = 0
    return tokens
