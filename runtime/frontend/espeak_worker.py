"""The espeak worker process: initialise espeak once, then fork a child per synthesis.

Why a separate process that forks: espeak-ng 1.51 keeps synthesis state across
calls that no API resets (the pitch-flutter table index, the automatic gain
control, the roughness cycle counter, libc rand() for breath noise), so the
same text and voice give a slightly different waveform, and phoneme positions
a few samples apart, on every call in one process. Forking a child from a
process that has initialised espeak but never synthesised starts every
synthesis from the same state, so the output is a pure function of (text,
speaker). The worker is a fresh interpreter started by espeak.py whose only
other thread is espeak's own idle one, so forking it is safe even when the
client process runs many threads (JAX, a server), where forking the client
would not be. A crash inside espeak also only kills one child.

Protocol (worker_protocol.py framing), on the worker's stdin/stdout. The worker
first sends {"ok": true, "sample_rate": ..., "version": ...} (or
{"ok": false, "error": ...}); then, for each request header {"text", "voice",
"variant", "rate", "pitch", "pitch_range"}, it answers {"ok": true, "events":
[[name, sample], ...]} with the int16 samples as payload, or {"ok": false,
"error": ...}. The worker exits when its stdin closes.

    python -m soundstorm.runtime.frontend.espeak_worker   (started by espeak.py, not by hand)
"""

from __future__ import annotations

import os
import sys
from typing import BinaryIO

from soundstorm.runtime.frontend.libespeak import Espeak, EspeakCallError, EspeakUnavailable
from soundstorm.runtime.frontend.worker_protocol import encode_message, read_message, write_message

STDOUT_FD = 1
STDERR_FD = 2
CHILD_OK = 0
CHILD_FAILED = 1


def _synthesize_request(espeak: Espeak, request: dict, out: BinaryIO) -> None:
    try:
        espeak.set_voice(request["voice"], request["variant"])
        espeak.set_parameters(request["rate"], request["pitch"], request["pitch_range"])
        raw = espeak.synthesize(request["text"])
    except EspeakCallError as error:
        write_message(out, {"ok": False, "error": str(error)})
        return
    events = [[event.name, event.sample] for event in raw.events]
    write_message(out, {"ok": True, "events": events}, raw.samples)


def _run_in_child(espeak: Espeak, request: dict) -> bytes:
    """The framed answer to `request`, computed in a child forked from the pristine worker."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        status = CHILD_FAILED
        try:
            with os.fdopen(write_fd, "wb") as out:
                _synthesize_request(espeak, request, out)
            status = CHILD_OK
        finally:
            os._exit(status)  # no interpreter cleanup in the child
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as child_out:
        answer = child_out.read()
    _, wait_status = os.waitpid(pid, 0)
    exit_code = os.waitstatus_to_exitcode(wait_status)
    if exit_code != CHILD_OK or not answer:
        return encode_message({"ok": False,
                               "error": f"espeak synthesis process failed (exit code {exit_code})"})
    return answer


def main() -> int:
    # The protocol gets a private copy of stdout; anything the C library prints
    # to stdout goes to stderr, so it cannot corrupt the message stream.
    protocol_out = os.fdopen(os.dup(STDOUT_FD), "wb")
    os.dup2(STDERR_FD, STDOUT_FD)
    protocol_in = sys.stdin.buffer
    try:
        espeak = Espeak()
    except EspeakUnavailable as error:
        write_message(protocol_out, {"ok": False, "error": str(error)})
        return 1
    write_message(protocol_out, {"ok": True, "sample_rate": espeak.sample_rate,
                                 "version": espeak.version})
    while (message := read_message(protocol_in)) is not None:
        request, _ = message
        protocol_out.write(_run_in_child(espeak, request))
        protocol_out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
