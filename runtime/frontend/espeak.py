"""Text + Speaker -> Utterance: espeak-ng audio with sample-exact phoneme spans.

espeak runs in a worker process (espeak_worker.py) that is started on first use
and forks a fresh child per synthesis, because espeak-ng carries state from one
synthesis to the next and would otherwise not give the same audio twice. This
module validates the input, talks to the worker under a lock (one request at a
time: espeak is not thread-safe, and the pipe carries one conversation) and
turns the answer into an Utterance. See libespeak.py for how espeak's event
sample positions were established.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from soundstorm.runtime.frontend.errors import FrontendError
from soundstorm.runtime.frontend.libespeak import DEBIAN_PACKAGE
from soundstorm.runtime.frontend.speakers import Speaker
from soundstorm.runtime.frontend.spans import PhonemeSpan, spans_from_events
from soundstorm.runtime.frontend.text_check import MAX_TEXT_CHARS, check_text
from soundstorm.runtime.frontend.worker_protocol import read_message, write_message

WORKER_MODULE = "soundstorm.runtime.frontend.espeak_worker"
# The directory that holds the `runtime` package, for the worker's import path.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
WORKER_EXIT_TIMEOUT_S = 10.0
INT16_FULL_SCALE = 32768.0
SAMPLE_DTYPE = np.dtype("<i2")


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class Utterance:
    """Mono audio in [-1, 1] at `sample_rate`, and phoneme spans covering it end to end.

    The waveform is read-only, like the rest of this frozen object.
    """

    waveform: np.ndarray  # float32 [num_samples]
    sample_rate: int
    phonemes: tuple[PhonemeSpan, ...]

    @property
    def duration_s(self) -> float:
        return self.waveform.size / self.sample_rate


class _Worker:
    """The worker process and its pipes; restarted when it died or the process forked."""

    def __init__(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT),
                                                          env.get("PYTHONPATH")]))
        self.owner_pid = os.getpid()
        self.process = subprocess.Popen([sys.executable, "-m", WORKER_MODULE], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        hello = read_message(self.process.stdout)
        if hello is None:
            self.close()
            raise FrontendError(f"the espeak worker ({sys.executable} -m {WORKER_MODULE}) exited "
                                f"before starting; see its stderr above")
        header, _ = hello
        if not header["ok"]:
            self.close()
            raise FrontendError(header["error"])
        self.sample_rate: int = header["sample_rate"]
        self.version: str = header["version"]

    def alive(self) -> bool:
        return self.owner_pid == os.getpid() and self.process.poll() is None

    def request(self, request: dict) -> tuple[dict, bytes] | None:
        try:
            write_message(self.process.stdin, request)
        except (BrokenPipeError, OSError):
            return None
        return read_message(self.process.stdout)

    def close(self) -> None:
        if self.owner_pid != os.getpid():
            return  # a forked copy: the parent owns the process
        try:
            self.process.stdin.close()  # the worker exits when its stdin closes
        except OSError:
            pass
        try:
            self.process.wait(timeout=WORKER_EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


_lock = threading.Lock()
_worker: _Worker | None = None


def _running_worker() -> _Worker:
    """The live worker, started if needed. Call with _lock held."""
    global _worker
    if _worker is None or not _worker.alive():
        _worker = _Worker()
    return _worker


def _shutdown_worker() -> None:
    global _worker
    with _lock:
        if _worker is not None:
            _worker.close()
            _worker = None


atexit.register(_shutdown_worker)


def espeak_version() -> str:
    """The version of the espeak-ng library the worker loaded, e.g. "1.51"."""
    with _lock:
        return _running_worker().version


def synthesize(text: str, speaker: Speaker, *, max_chars: int = MAX_TEXT_CHARS) -> Utterance:
    """Says `text` with `speaker`. Raises FrontendError on text espeak should not see."""
    check_text(text, max_chars)
    if not isinstance(speaker, Speaker):
        raise FrontendError(f"speaker must be a Speaker, got {type(speaker).__name__}")
    request = {"text": text, "voice": speaker.voice, "variant": speaker.variant,
               "rate": speaker.rate, "pitch": speaker.pitch, "pitch_range": speaker.pitch_range}
    with _lock:
        worker = _running_worker()
        answer = worker.request(request)
        if answer is None:  # the worker died under us; one fresh try
            worker.close()
            worker = _running_worker()
            answer = worker.request(request)
        if answer is None:
            raise FrontendError(f"the espeak worker died while saying {text[:40]!r}; "
                                f"is the '{DEBIAN_PACKAGE}' package intact?")
        sample_rate = worker.sample_rate
    header, payload = answer
    if not header["ok"]:
        raise FrontendError(f"speaker {speaker.name!r}: {header['error']}")
    samples = np.frombuffer(payload, dtype=SAMPLE_DTYPE)
    if samples.size == 0:
        raise FrontendError(f"espeak produced no audio for {text!r}")
    waveform = samples.astype(np.float32) / INT16_FULL_SCALE
    waveform.flags.writeable = False
    phonemes = spans_from_events(((name, sample) for name, sample in header["events"]),
                                 samples.size)
    return Utterance(waveform=waveform, sample_rate=sample_rate, phonemes=phonemes)
