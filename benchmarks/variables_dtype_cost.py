"""What bfloat16 costs: the same held-out requests through a float32 and a bfloat16 export.

    .venv/bin/python benchmarks/variables_dtype_cost.py --float32 exports/reference-f32/soundstorm \\
        --bfloat16 models/soundstorm --data data/corpus [--utterances 24]

Both exports come from one checkpoint and differ in one setting: the stored
variables (`soundstorm export --variables-dtype`) or the computation
(`--compute-dtype bfloat16`, activations and matmuls; docs/tpu.md). For
each utterance, picked as `soundstorm eval` picks them (held-out sentences, the
voice prompt another sentence of the same speaker, seed = index), it prints the
share of generated tokens the two exports agree on, per level, and the largest
difference of their `logits` signature (level 1 given everything else, on the
float32 export's tokens) against the largest logit. The listening-level cost
(WER, similarity, DNSMOS) is `soundstorm eval` of each export (MODEL_CARD.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--float32", type=Path, required=True)
    parser.add_argument("--bfloat16", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="eval_unseen_speakers")
    parser.add_argument("--utterances", type=int, default=24)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from soundstorm.runtime.client import Client
    from soundstorm.data.loader import SpeechCorpus, pick_prompt
    from soundstorm.apps.evaluation.harness import SAMPLE_RATE, espeak, spread_over_sentences

    clients = {"float32": Client.embedded(args.float32), "bfloat16": Client.embedded(args.bfloat16)}
    examples = SpeechCorpus(args.data).examples(args.split)
    agree, counts, logit_diffs, logit_scale = None, 0, [], []
    for number, index in enumerate(spread_over_sentences(examples)[:args.utterances]):
        target, prompt = examples[index], pick_prompt(examples, index)
        speech = {}
        for name, client in clients.items():
            voice = client.voice_prompt(espeak(prompt.text, prompt.speaker),
                                        sample_rate=SAMPLE_RATE, transcript=prompt.text)
            speech[name] = (voice, client.synthesize(target.text, voice, seed=index))
        voice, reference = speech["float32"]
        equal = (reference.tokens == speech["bfloat16"][1].tokens)
        agree = equal.sum(axis=0) if agree is None else agree + equal.sum(axis=0)
        counts += equal.shape[0]
        inputs = {"semantic_tokens": np.concatenate([voice.semantic,
                                                     clients["float32"].text_to_semantic(
                                                         target.text)])[None],
                  "acoustic_tokens": np.concatenate([voice.tokens, reference.tokens])[None],
                  "levels": np.zeros(1, np.int32)}
        inputs["lengths"] = np.array([inputs["acoustic_tokens"].shape[1]], np.int32)
        logits = {name: client.backend.generate(inputs, "logits")["logits"]
                  for name, client in clients.items()}
        logit_diffs.append(float(np.abs(logits["float32"] - logits["bfloat16"]).max()))
        logit_scale.append(float(np.abs(logits["float32"]).max()))
        print(f"{number + 1}/{args.utterances} {target.speaker}: {equal.mean():.3f} of tokens "
              "equal", file=sys.stderr)
    share = agree / counts
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {args.utterances} utterances "
          f"of {args.split}; float32 {clients['float32'].backend.path}, bfloat16 "
          f"{clients['bfloat16'].backend.path}")
    print("tokens equal per level: " + ", ".join(f"{s:.3f}" for s in share)
          + f"; all levels {share.mean():.3f}")
    print(f"logits: largest |float32 - bfloat16| {max(logit_diffs):.4f} (median over utterances "
          f"{np.median(logit_diffs):.4f}) for logits up to {max(logit_scale):.1f}")


if __name__ == "__main__":
    main()
