"""The on-disk format of a speech corpus, which apps/corpus/build.py writes and loader.py reads.

    <corpus>/manifest.json       format_version, the build's config, per split its shards
    <corpus>/<split>-<NNNNN>.npz one shard: the arrays named in SHARD_ARRAYS

A shard concatenates its examples: `semantic_tokens` [sum S] and
`acoustic_tokens` [sum S * r, Q] with `semantic_offsets` / `frame_offsets`
[n + 1] marking where each example starts, plus `speaker`, `text` and `sentence_id` [n].
"""

CORPUS_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SPLITS = ("train", "eval_seen_speakers", "eval_unseen_speakers")
SHARD_ARRAYS = ("semantic_tokens", "acoustic_tokens", "semantic_offsets", "frame_offsets",
                "speaker", "text", "sentence_id")


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}.npz"
