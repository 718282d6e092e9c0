"""`soundstorm eval`: an exported model on held-out sentences and speakers, all offline.

For each of the first N utterances of a corpus split (held-out sentences; with
`eval_unseen_speakers`, voices never seen in training) the model, through the
client library, speaks the utterance's text prompted with *another* sentence of
the same speaker. Beside it stand the raw espeak-ng audio of that text and the
codec's resynthesis of it (the ceiling: the best the model could do with these
tokens). Measured:

- intelligibility: Whisper tiny.en's word and character error rates of
  generated, ceiling and raw, after Whisper's text normaliser
  (apps/evaluation/asr.py), with every transcript in the report;
- voice consistency: speaker similarity of the prompt to the generation, to the
  ceiling (same speaker, other sentence) and to another speaker's ceiling;
- quality: DNSMOS of generated and ceiling;
- long form: speaker similarity between the first and the last window of one
  long generation.

Writes report.md, metrics.json, spectrograms.png and metrics.png to a folder.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from soundstorm.apps.evaluation.asr import (SpeechRecognizer, character_error_rate, normalise,
                                       word_error_rate)
from soundstorm.apps.evaluation.dnsmos import dnsmos
from soundstorm.apps.evaluation.speaker import speaker_similarity
from soundstorm.validation import InputError

SAMPLE_RATE = 16_000


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    split: str = "eval_unseen_speakers"
    num_utterances: int = 8
    long_form_seconds: float = 60.0
    seed: int = 0
    # None: the defaults the exported model's contract states.
    temperature: float | None = None
    choice_temperature: float | None = None


def spread_over_sentences(examples) -> list[int]:
    """Indices of `examples` ordered so that distinct sentences come first, speakers rotating.

    A split lists each sentence with all its speakers; the first N of it would
    be few sentences, so N utterances are taken one per sentence before any
    sentence repeats.
    """
    by_text: dict[str, list[int]] = {}
    for index, example in enumerate(examples):
        by_text.setdefault(example.text, []).append(index)
    groups = list(by_text.values())
    order = []
    for round_ in range(max(len(group) for group in groups)):
        order += [group[(number + round_) % len(group)] for number, group in enumerate(groups)
                  if round_ < len(group)]
    return order


def espeak(text: str, speaker: str) -> np.ndarray:
    """espeak-ng audio of `text` by a corpus speaker, mono at the codec's 16 kHz."""
    from soundstorm.runtime.codec import to_mono
    from soundstorm.runtime.frontend import get_speaker, synthesize
    utterance = synthesize(text, get_speaker(speaker))
    return to_mono(utterance.waveform, utterance.sample_rate, SAMPLE_RATE)


def _summary(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values),
            "std": statistics.pstdev(values) if len(values) > 1 else 0.0, "n": len(values)}


def evaluate(client, corpus, out_dir: Path, config: EvalConfig = EvalConfig(),
             progress: bool = True) -> dict:
    """Runs the evaluation; returns the metrics (also written to out_dir)."""
    from soundstorm.data.loader import pick_prompt

    examples = corpus.examples(config.split)
    if len(examples) < 2:
        raise InputError(f"split {config.split} has too few utterances to evaluate")
    count = min(config.num_utterances, len(examples))
    recognizer = SpeechRecognizer()
    rows, first = [], None
    sampling = {"temperature": config.temperature, "choice_temperature": config.choice_temperature}
    for index in tqdm(spread_over_sentences(examples)[:count], desc="eval", unit=" utt",
                      disable=not progress):
        target = examples[index]
        prompt = pick_prompt(examples, index)
        prompt_audio = espeak(prompt.text, prompt.speaker)
        raw = espeak(target.text, target.speaker)
        ceiling = client.codec.decode(client.codec.encode(raw, SAMPLE_RATE))
        other = next(e for e in examples if e.speaker != target.speaker)
        other_ceiling = client.codec.decode(client.codec.encode(
            espeak(other.text, other.speaker), SAMPLE_RATE))
        voice = client.voice_prompt(prompt_audio, sample_rate=SAMPLE_RATE, transcript=prompt.text)
        generated = client.synthesize(target.text, voice, seed=config.seed + index,
                                      **sampling).waveform
        row = {"text": target.text, "speaker": target.speaker}
        for name, audio in (("generated", generated), ("ceiling", ceiling), ("raw", raw)):
            heard = recognizer.transcribe(audio)
            row[f"wer_{name}"] = word_error_rate(target.text, heard)
            row[f"cer_{name}"] = character_error_rate(target.text, heard)
            row[f"heard_{name}"] = heard
        rows.append({
            **row,
            "similarity_prompt_generated": speaker_similarity(prompt_audio, generated, SAMPLE_RATE),
            "similarity_prompt_ceiling": speaker_similarity(prompt_audio, ceiling, SAMPLE_RATE),
            "similarity_prompt_other_speaker": speaker_similarity(prompt_audio, other_ceiling,
                                                                  SAMPLE_RATE),
            "dnsmos_generated": dnsmos(generated, SAMPLE_RATE)["ovrl"],
            "dnsmos_ceiling": dnsmos(ceiling, SAMPLE_RATE)["ovrl"],
        })
        if first is None:
            first = {"prompt": prompt_audio, "ceiling": ceiling, "generated": generated}
    metrics = {key: _summary([row[key] for row in rows]) for key in rows[0]
               if key not in ("text", "speaker") and not key.startswith("heard_")}
    metrics["pooled"] = pooled_error_rates(rows)
    metrics["long_form"] = _long_form(client, examples[0], config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps({"config": dataclasses.asdict(config),
                                                      "metrics": metrics, "utterances": rows},
                                                     indent=1) + "\n")
    from soundstorm.metrics import plot_spectrograms
    plot_spectrograms({f"{name} ({examples[0].speaker})": audio for name, audio in first.items()},
                      SAMPLE_RATE, out_dir / "spectrograms.png")
    _plot_bars(metrics, out_dir / "metrics.png")
    (out_dir / "report.md").write_text(report_markdown(metrics, config, count, rows))
    return metrics


def pooled_error_rates(rows: list[dict]) -> dict[str, float]:
    """Corpus-level WER and CER: all errors over all reference words (characters).

    The usual way ASR papers pool (long sentences weigh more); unlike the mean of
    per-utterance rates it is not dominated by a short sentence on which the
    recogniser hallucinated a paragraph. Errors per utterance are rate x length.
    """
    lengths = {"wer": [len(normalise(row["text"]).split()) for row in rows],
               "cer": [len(normalise(row["text"])) for row in rows]}
    return {f"{kind}_{name}": sum(row[f"{kind}_{name}"] * n for row, n in zip(rows, counts))
            / sum(counts)
            for kind, counts in lengths.items() for name in ("generated", "ceiling", "raw")}


def _long_form(client, example, config: EvalConfig) -> dict:
    """Speaker similarity of the first and last window of one long generation."""
    from soundstorm.apps.passage import semantic_of_seconds
    prompt_audio = espeak(example.text, example.speaker)
    voice = client.voice_prompt(prompt_audio, sample_rate=SAMPLE_RATE, transcript=example.text)
    chunks = list(client.stream(voice=voice, seed=config.seed, temperature=config.temperature,
                                choice_temperature=config.choice_temperature,
                                semantic_tokens=semantic_of_seconds(client,
                                                                    config.long_form_seconds)))
    audio = np.concatenate(chunks)
    # Windows are long; compare at most 10 s from each end (the first and the last window).
    span = min(len(chunks[0]), len(chunks[-1]), 10 * SAMPLE_RATE)
    return {"seconds": audio.size / SAMPLE_RATE, "windows": len(chunks),
            "similarity_first_last": speaker_similarity(audio[:span], audio[-span:], SAMPLE_RATE),
            "similarity_prompt_last": speaker_similarity(prompt_audio, audio[-span:], SAMPLE_RATE)}


def _plot_bars(metrics: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    groups = {"word error rate (Whisper tiny.en)": ["wer_generated", "wer_ceiling", "wer_raw"],
              "character error rate": ["cer_generated", "cer_ceiling", "cer_raw"],
              "speaker similarity to the prompt": ["similarity_prompt_generated",
                                                   "similarity_prompt_ceiling",
                                                   "similarity_prompt_other_speaker"],
              "DNSMOS (overall)": ["dnsmos_generated", "dnsmos_ceiling"]}
    fig, axes = plt.subplots(1, len(groups), figsize=(16, 3.5))
    for ax, (title, keys) in zip(axes, groups.items()):
        labels = [key.rsplit("_", 1)[1] if key.startswith(("wer", "cer")) else
                  key.split("_", 1)[1].replace("prompt_", "") for key in keys]
        ax.bar(labels, [metrics[k]["mean"] for k in keys],
               yerr=[metrics[k]["std"] for k in keys], capsize=4, color="#4c72b0")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def report_markdown(metrics: dict, config: EvalConfig, count: int, rows: list[dict]) -> str:
    def cell(key):
        return f"{metrics[key]['mean']:.3f} ± {metrics[key]['std']:.3f}"
    long_form, pooled = metrics["long_form"], metrics["pooled"]
    transcripts = "\n".join(
        f"| {_escape(row['text'])} | {row['speaker']} | {_escape(row['heard_raw'])} | "
        f"{_escape(row['heard_ceiling'])} | {_escape(row['heard_generated'])} | "
        f"{row['wer_generated']:.2f} |" for row in rows)
    return f"""# Evaluation

{count} utterances of split `{config.split}`, each spoken by the model in the voice of another
sentence of the same speaker (espeak-ng audio, with its transcript); seed {config.seed}.
Mean ± standard deviation over utterances. Recogniser: Whisper tiny.en (faster-whisper,
greedy); error rates after Whisper's English normaliser, numbers as words.

| measure | generated | ceiling (codec resynthesis) | raw espeak-ng | other speaker |
| --- | --- | --- | --- | --- |
| word error rate | {cell('wer_generated')} | {cell('wer_ceiling')} | {cell('wer_raw')} | |
| character error rate | {cell('cer_generated')} | {cell('cer_ceiling')} | {cell('cer_raw')} | |
| speaker similarity to the prompt | {cell('similarity_prompt_generated')} | {cell('similarity_prompt_ceiling')} | | {cell('similarity_prompt_other_speaker')} |
| DNSMOS overall | {cell('dnsmos_generated')} | {cell('dnsmos_ceiling')} | | |
| word error rate, pooled (all errors / all words) | {pooled['wer_generated']:.3f} | {pooled['wer_ceiling']:.3f} | {pooled['wer_raw']:.3f} | |
| character error rate, pooled | {pooled['cer_generated']:.3f} | {pooled['cer_ceiling']:.3f} | {pooled['cer_raw']:.3f} | |

Generated over ceiling: word error rate {_ratio(metrics, 'wer')} (pooled
{_pooled_ratio(pooled, 'wer')}), character error rate {_ratio(metrics, 'cer')} (pooled
{_pooled_ratio(pooled, 'cer')}), speaker similarity
{metrics['similarity_prompt_generated']['mean'] / metrics['similarity_prompt_ceiling']['mean']:.2f}.

Long form: {long_form['seconds']:.1f} s in {long_form['windows']} windows; speaker similarity
first vs last window {long_form['similarity_first_last']:.3f}, prompt vs last window
{long_form['similarity_prompt_last']:.3f}.

![metrics](metrics.png)

![spectrograms of the first utterance](spectrograms.png)

## Transcripts

| text | speaker | raw espeak-ng heard as | ceiling heard as | generated heard as | WER generated |
| --- | --- | --- | --- | --- | --- |
{transcripts}
"""


def _pooled_ratio(pooled: dict, prefix: str) -> str:
    ceiling = pooled[f"{prefix}_ceiling"]
    return "n/a" if ceiling == 0 else f"{pooled[f'{prefix}_generated'] / ceiling:.2f}"


def _ratio(metrics: dict, prefix: str) -> str:
    ceiling = metrics[f"{prefix}_ceiling"]["mean"]
    if ceiling == 0:
        return "n/a (the ceiling is error-free)"
    return f"{metrics[f'{prefix}_generated']['mean'] / ceiling:.2f}"
