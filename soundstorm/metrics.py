"""Training metrics on disk: one JSON object per line, and a PNG loss curve drawn from them."""

from __future__ import annotations

import json
import math
from pathlib import Path


class MetricsLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def truncate_after(self, step: int) -> None:
        """Drops records past `step` (written after the checkpoint a run resumes from)."""
        kept = [record for record in self.read() if record["step"] <= step]
        self.path.write_text("".join(json.dumps(record) + "\n" for record in kept))


def plot_loss_curve(records: list[dict], path: Path, codebook_size: int,
                    baselines: dict[str, float] | None = None) -> None:
    """Loss against step, with the uniform-guess baseline ln(codebook_size) for scale and
    any other named baselines (e.g. the data's unigram entropy)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [record["step"] for record in records]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, [record["loss"] for record in records], label="masked-token cross-entropy")
    ax.axhline(math.log(codebook_size), color="grey", linestyle="--",
               label=f"uniform baseline ln({codebook_size}) = {math.log(codebook_size):.2f}")
    for (name, value), color in zip(sorted((baselines or {}).items()), ("C1", "C2", "C3")):
        ax.axhline(value, color=color, linestyle=":", label=f"{name} = {value:.2f}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats)")
    ax.set_title("SoundStorm training loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_spectrograms(waveforms: dict[str, "np.ndarray"], sample_rate: int, path: Path) -> None:
    """One log-magnitude spectrogram per named waveform, stacked, on a shared time axis."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(waveforms), 1, figsize=(9, 2.4 * len(waveforms)), squeeze=False)
    for ax, (name, waveform) in zip(axes[:, 0], waveforms.items()):
        ax.specgram(waveform, NFFT=512, Fs=sample_rate, noverlap=384, cmap="magma")
        ax.set_title(name)
        ax.set_ylabel("Hz")
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
