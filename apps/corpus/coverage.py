"""Phoneme and diphone coverage of a corpus's splits, read from its semantic tokens.

A semantic token is the phoneme under a frame's centre (runtime/frontend/semantic.py),
so an utterance's phoneme sequence is its token sequence with runs collapsed
(two identical phonemes in a row count once, and phonemes shorter than a frame
are missing: docs/data.md measures how few). Silence (token 0) splits the
sequence: a diphone is two consecutive non-silent phonemes.
"""

from __future__ import annotations

import collections

import numpy as np

SILENCE_ID = 0


def phoneme_runs(semantic_tokens: np.ndarray) -> list[list[int]]:
    """The utterance's phonemes, runs collapsed, split at silences: [[p, p, ...], ...]."""
    tokens = np.asarray(semantic_tokens)
    if tokens.size == 0:
        return []
    keep = np.concatenate([[True], tokens[1:] != tokens[:-1]])
    runs, current = [], []
    for token in tokens[keep].tolist():
        if token == SILENCE_ID:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(token)
    if current:
        runs.append(current)
    return runs


def counts(token_sequences) -> tuple[collections.Counter, collections.Counter]:
    """(phoneme counts, diphone counts) over utterances' semantic token arrays."""
    phonemes, diphones = collections.Counter(), collections.Counter()
    for tokens in token_sequences:
        for run in phoneme_runs(tokens):
            phonemes.update(run)
            diphones.update(zip(run, run[1:]))
    return phonemes, diphones


def coverage(splits: dict[str, list[np.ndarray]], vocabulary_size: int,
             reference: str = "train") -> dict[str, dict]:
    """Per split: phoneme and diphone types and tokens, and how much of them `reference` covers.

    `splits`: split name -> semantic token arrays. `*_types_in_reference`: share of
    the split's distinct phonemes/diphones that occur in the reference split;
    `*_tokens_in_reference`: the same share counted per occurrence.
    """
    tallies = {name: counts(sequences) for name, sequences in splits.items()}
    ref_phonemes, ref_diphones = tallies[reference]
    report = {}
    for name, (phonemes, diphones) in tallies.items():
        row = {"phoneme_types": len(phonemes),
               "phoneme_types_of_vocabulary": len(phonemes) / (vocabulary_size - 1),
               "diphone_types": len(diphones), "diphone_tokens": sum(diphones.values())}
        for kind, seen, ref in (("phoneme", phonemes, ref_phonemes),
                                ("diphone", diphones, ref_diphones)):
            total = sum(seen.values())
            row[f"{kind}_types_in_{reference}"] = (
                sum(key in ref for key in seen) / len(seen) if seen else 1.0)
            row[f"{kind}_tokens_in_{reference}"] = (
                sum(n for key, n in seen.items() if key in ref) / total if total else 1.0)
        report[name] = row
    return report
