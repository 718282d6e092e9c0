"""Per-level masked loss of a trained run on held-out data, beside each level's unigram entropy.

    .venv/bin/python benchmarks/level_loss.py --workdir runs/small-speech --data data/corpus

Batches of held-out prompt/target pairs are masked as in training (the
paper's scheme, level drawn per example); the loss of each example's masked
tokens is pooled by its level. The unigram entropy of a level is the loss of a
model that predicts that level's code frequencies (training split), so the gap
says how much context the model has learnt to use, level by level.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from soundstorm.data.loader import SpeechCorpus, training_batches
from soundstorm.masking import mask_for_training
from soundstorm.model import SoundStorm
from soundstorm.run_dir import RunDirectory


def level_entropies(examples, num_levels: int, codebook_size: int) -> list[float]:
    tokens = np.concatenate([example.acoustic_tokens for example in examples])
    entropies = []
    for level in range(num_levels):
        p = np.bincount(tokens[:, level], minlength=codebook_size) / len(tokens)
        p = p[p > 0]
        entropies.append(float(-(p * np.log(p)).sum()))
    return entropies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="eval_seen_speakers")
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()

    config, params = RunDirectory(args.workdir).load()
    corpus = SpeechCorpus(args.data)
    corpus.check_compatible(config)
    model = SoundStorm(config)
    max_frames = int(args.seconds * config.frame_rate_hz)
    batches = training_batches(corpus.examples(args.split), config, 16, seed=5,
                               max_frames=max_frames, bucket_frames=max_frames)

    @jax.jit
    def per_example_loss(key, batch):
        masked = mask_for_training(key, config, batch.semantic_tokens, batch.acoustic_tokens,
                                   batch.lengths)
        logits = model.apply({"params": params}, masked.semantic_tokens, masked.acoustic_inputs,
                             masked.frame_mask, masked.levels)
        log_probs = jax.nn.log_softmax(logits, -1)
        nll = -jnp.take_along_axis(log_probs, masked.targets[..., None], -1)[..., 0]
        return (nll * masked.loss_mask).sum(1), masked.loss_mask.sum(1), masked.levels

    totals = np.zeros((config.num_levels, 2))
    for index in range(args.batches):
        nll, count, levels = jax.device_get(per_example_loss(jax.random.key(index), next(batches)))
        np.add.at(totals, levels, np.stack([nll, count], axis=1))
    unigram = level_entropies(corpus.examples("train"), config.num_levels, config.codebook_size)
    print(f"run {args.workdir}, split {args.split}, {args.batches} batches of 16")
    print(" level   loss  unigram  masked tokens")
    for level in range(config.num_levels):
        loss = totals[level, 0] / max(totals[level, 1], 1)
        print(f"{level + 1:6d}  {loss:5.2f}  {unigram[level]:7.2f}  {int(totals[level, 1]):13d}")


if __name__ == "__main__":
    main()
