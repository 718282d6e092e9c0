"""End-to-end synthesis timings through the client: total time with codec and frontend shown
apart, and time to first audio when streaming (`soundstorm bench`)."""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from pathlib import Path


from soundstorm.apps.passage import semantic_of_seconds
from soundstorm.runtime.client.client import Client, Timings
from soundstorm.runtime.client.prompt import VoicePrompt

@dataclasses.dataclass
class Row:
    audio_s: float
    total_s: float
    first_audio_s: float
    windows: int
    timings: Timings


def measure(client: Client, voice: VoicePrompt, seconds: float, seed: int = 0) -> Row:
    semantic = semantic_of_seconds(client, seconds)
    timings, started, first, samples, windows = Timings(), time.perf_counter(), None, 0, 0
    for chunk in client.stream(voice=voice, semantic_tokens=semantic, seed=seed, timings=timings):
        first = first if first is not None else time.perf_counter() - started
        samples, windows = samples + chunk.size, windows + 1
    return Row(samples / client.sample_rate, time.perf_counter() - started, first, windows,
               timings)


def report(rows: list[Row]) -> str:
    lines = [f"{'audio s':>8} {'windows':>8} {'total s':>8} {'first audio s':>14} "
             f"{'model s':>8} {'codec s':>8} {'x real time':>12}"]
    for row in rows:
        lines.append(f"{row.audio_s:8.1f} {row.windows:8d} {row.total_s:8.2f} "
                     f"{row.first_audio_s:14.2f} {row.timings.model_s:8.2f} "
                     f"{row.timings.codec_s:8.2f} {row.audio_s / row.total_s:12.2f}")
    return "\n".join(lines)


def server_report(client: Client, voice_audio: Path, seconds: list[float], seed: int = 0, *,
                  server: str = "") -> str:
    """`soundstorm bench --server`: end-to-end timings through a running server, one row per
    length in `seconds` (after one untimed request: the server warmed up at load)."""
    voice = client.voice_prompt(voice_audio)
    measure(client, voice, min(seconds))
    rows = [measure(client, voice, length, seed) for length in seconds]
    return (f"machine (client): {platform.machine()}, {os.cpu_count()} cores; server "
            f"{server}; prompt {voice.frames / client.frame_rate_hz:g} s\n" + report(rows))
