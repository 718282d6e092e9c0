"""ctypes binding to libespeak-ng.so.1: just the calls the frontend needs, stdlib only.

This module talks to the C library directly and is used inside the espeak
worker process (see espeak_worker.py). It knows nothing about spans,
vocabularies or numpy: it turns (text, voice, parameters) into raw int16
samples plus the phoneme events espeak reported. espeak_Initialize starts one
background thread of espeak's own, even in synchronous mode; it stays idle.

Names and values follow espeak-ng's public header speak_lib.h (1.51).

How espeak's event positions map to samples (measured on 1.51, see
tests/test_frontend.py::test_phoneme_timing_matches_audio_energy):
    `espeak_EVENT.sample` is the exact offset, in samples, of the event into
    the audio stream that this espeak_Synth call delivers to the callback,
    counted from 0 at the first sample of the call (it restarts at 0 for every
    espeak_Synth). After a pause phoneme, the first non-zero sample of the next
    phoneme is at exactly that offset; the final pause event sits exactly at
    the number of samples delivered. `audio_position` is the same position in
    whole milliseconds, truncated (floor(sample * 1000 / rate)), so it is up to
    a millisecond early and must not be used for alignment. An event comes
    with the callback chunk that contains its sample (or ends exactly at it).
"""

from __future__ import annotations

import ctypes
import dataclasses
from pathlib import Path

import grpc

from soundstorm.protos.status import StatusError
from soundstorm.runtime.frontend.errors import FrontendError

LIBRARY_SONAME = "libespeak-ng.so.1"
DEBIAN_PACKAGE = "espeak-ng"

# espeak_AUDIO_OUTPUT: synthesize into the callback, return when done, no sound device.
AUDIO_OUTPUT_SYNCHRONOUS = 2
# espeak_Initialize options.
ESPEAK_INITIALIZE_PHONEME_EVENTS = 0x0001  # phoneme events, with mnemonic names (not IPA)
ESPEAK_INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of exit() when data is missing
# Audio buffer length, ms; 0 is espeak's default. It only sets the callback's chunk size.
DEFAULT_BUFFER_MS = 0

# espeak_EVENT_TYPE values used here.
EVENT_LIST_TERMINATED = 0
EVENT_PHONEME = 7

# espeak_POSITION_TYPE: start synthesis at a character position (0 = the start).
POS_CHARACTER = 1
# espeak_Synth flags: the text is UTF-8; no SSML, no [[phoneme]] input.
ESPEAK_CHARS_UTF8 = 1

# espeak_PARAMETER values.
PARAMETER_RATE = 1  # words per minute
PARAMETER_PITCH = 3  # 0-99, 50 = the voice's own base pitch
PARAMETER_RANGE = 4  # 0-99, 50 = the voice's own pitch range
ABSOLUTE_VALUE = 0  # espeak_SetParameter(..., relative=0)

# espeak_ERROR
EE_OK = 0

VARIANTS_SUBDIRECTORY = ("voices", "!v")
VOICE_VARIANT_SEPARATOR = "+"


class EspeakUnavailable(FrontendError):
    """The library could not be loaded or initialised; the message says why and what to install."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class EspeakCallError(StatusError, RuntimeError):
    """An espeak call returned an error code for this request."""

    code = grpc.StatusCode.INTERNAL


class _EventId(ctypes.Union):
    # Phoneme events carry the mnemonic in `string` (NUL-padded, at most 8 bytes).
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms, truncated: not exact (see module docstring)
        ("sample", ctypes.c_int),  # exact sample offset into this call's audio
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                   ctypes.POINTER(_Event))
_CONTINUE_SYNTHESIS = 0


@dataclasses.dataclass(frozen=True)
class PhonemeEvent:
    """A phoneme started at `sample` (offset into the call's audio); `name` is espeak's mnemonic."""

    name: str
    sample: int


@dataclasses.dataclass(frozen=True)
class RawSynthesis:
    """What one espeak_Synth call delivered: little-endian int16 mono samples and phoneme events."""

    samples: bytes
    events: tuple[PhonemeEvent, ...]


def load_library() -> ctypes.CDLL:
    """libespeak-ng by soname, with argument/return types declared."""
    try:
        lib = ctypes.CDLL(LIBRARY_SONAME)
    except OSError as error:
        raise EspeakUnavailable(
            f"cannot load {LIBRARY_SONAME} ({error}); install the Debian package "
            f"'{DEBIAN_PACKAGE}' (apt-get install {DEBIAN_PACKAGE})") from error
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    lib.espeak_Info.restype = ctypes.c_char_p
    return lib


class Espeak:
    """One initialised espeak-ng instance. Not thread-safe, like espeak itself.

    The synth callback appends to per-call buffers; `synthesize` resets them,
    runs espeak_Synth (which returns only when all audio has been delivered,
    in AUDIO_OUTPUT_SYNCHRONOUS mode) and returns what was collected.
    """

    def __init__(self):
        self._lib = load_library()
        sample_rate = self._lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, DEFAULT_BUFFER_MS, None,
            ESPEAK_INITIALIZE_PHONEME_EVENTS | ESPEAK_INITIALIZE_DONT_EXIT)
        if sample_rate <= 0:
            raise EspeakUnavailable(
                f"espeak_Initialize failed ({sample_rate}); is the '{DEBIAN_PACKAGE}' data "
                "installed (espeak-ng-data)?")
        self.sample_rate: int = sample_rate
        data_path = ctypes.c_char_p()
        self.version: str = self._lib.espeak_Info(ctypes.byref(data_path)).decode()
        self.data_path = Path(data_path.value.decode()) if data_path.value else None
        self._chunks: list[bytes] = []
        self._events: list[PhonemeEvent] = []
        # Kept referenced: espeak holds only the raw function pointer.
        self._callback = _SYNTH_CALLBACK(self._on_synth)
        self._lib.espeak_SetSynthCallback(self._callback)

    def _on_synth(self, wav, num_samples, events) -> int:
        if wav and num_samples > 0:
            self._chunks.append(ctypes.string_at(wav, num_samples * ctypes.sizeof(ctypes.c_short)))
        index = 0
        while events[index].type != EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type == EVENT_PHONEME:
                self._events.append(PhonemeEvent(event.id.string.decode("ascii"), event.sample))
            index += 1
        return _CONTINUE_SYNTHESIS

    def has_variant(self, variant: str) -> bool:
        """Whether espeak's data has this voice variant (espeak ignores unknown ones silently)."""
        if self.data_path is None:
            return False
        return self.data_path.joinpath(*VARIANTS_SUBDIRECTORY, variant).is_file()

    def set_voice(self, voice: str, variant: str | None) -> None:
        if variant is not None and not self.has_variant(variant):
            raise EspeakCallError(f"espeak-ng has no voice variant {variant!r} "
                                  f"(looked in {self.data_path.joinpath(*VARIANTS_SUBDIRECTORY)})")
        name = voice if variant is None else f"{voice}{VOICE_VARIANT_SEPARATOR}{variant}"
        status = self._lib.espeak_SetVoiceByName(name.encode("ascii"))
        if status != EE_OK:
            raise EspeakCallError(f"espeak-ng has no voice {name!r} (espeak_SetVoiceByName "
                                  f"returned {status})")

    def set_parameters(self, rate_wpm: int, pitch: int, pitch_range: int) -> None:
        for parameter, value in ((PARAMETER_RATE, rate_wpm), (PARAMETER_PITCH, pitch),
                                 (PARAMETER_RANGE, pitch_range)):
            status = self._lib.espeak_SetParameter(parameter, value, ABSOLUTE_VALUE)
            if status != EE_OK:
                raise EspeakCallError(f"espeak_SetParameter({parameter}, {value}) returned {status}")

    def synthesize(self, text: str) -> RawSynthesis:
        """All audio and phoneme events of `text` in the current voice and parameters."""
        self._chunks, self._events = [], []
        encoded = text.encode("utf-8")
        status = self._lib.espeak_Synth(encoded, len(encoded) + 1, 0, POS_CHARACTER, 0,
                                        ESPEAK_CHARS_UTF8, None, None)
        if status != EE_OK:
            raise EspeakCallError(f"espeak_Synth returned {status}")
        return RawSynthesis(b"".join(self._chunks), tuple(self._events))
