"""Hostile clients against `soundstorm serve`: a soak of good and bad traffic, with the server's
memory and threads before and after.

    .venv/bin/python benchmarks/serving_soak.py [--base-path models/soundstorm] [--seconds 120]

Starts the server as its own process with small limits (apps/bench/soak.py:
4 MiB messages, 16 MiB in flight, 4 gRPC and 4 REST threads, batch <= 4), warms
it up with the same traffic from twice as many clients as each pool has threads
(so every pool is full before the baseline) for a tenth of the time, then runs `--clients`
threads for `--seconds`, each sending a random mix of good requests (gRPC and
REST, `--audio-seconds` each, every answer compared with the first) and every
bad case of the hostile-client table, while `--slow` sockets trickle a request
head byte by byte. Prints the counts, good requests lost, bad requests answered
with another code, and the server's VmRSS and thread count (/proc) before and
after. The server runs on jemalloc unless `--allocator` says otherwise
(runtime/serving/allocator.py says why). The figures in docs/serving.md come from
this script.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from soundstorm.apps.bench import soak
from soundstorm.export.contract import read_contract
from soundstorm.runtime.savedmodel.layout import find_version_dir
from soundstorm.runtime.serving.allocator import LIBRARIES, RECOMMENDED


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-path", type=Path, default=Path("models/soundstorm"))
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--slow", type=int, default=20)
    parser.add_argument("--audio-seconds", type=float, default=1.0)
    parser.add_argument("--allocator", choices=("system", *LIBRARIES), default=RECOMMENDED,
                        help="malloc preloaded into the server (system: glibc's); default "
                             "%(default)s, as docs/serving.md advises")
    args = parser.parse_args()

    arrays = soak.good_arrays(read_contract(find_version_dir(args.base_path)),
                              args.audio_seconds)
    print(f"machine: {platform.machine()}, {platform.processor() or platform.platform()}; "
          f"model {args.base_path}; {args.audio_seconds:g} s of audio per good request; "
          f"server malloc: {args.allocator}",
          flush=True)
    server = soak.ServerProcess.start(
        args.base_path.resolve(), f"--max_message_bytes={soak.SOAK_MAX_MESSAGE_BYTES}",
        f"--max_inflight_bytes={soak.SOAK_MAX_INFLIGHT_BYTES}",
        f"--grpc_max_threads={soak.SOAK_THREADS}",
        f"--rest_api_num_threads={soak.SOAK_THREADS}", "--max_request_batch_size=4",
        allocator=None if args.allocator == "system" else args.allocator)
    try:
        started = server.status()
        # Twice the threads of each pool at once: every pool is full before the baseline.
        warm = soak.soak(server, arrays, args.seconds / 10, 2 * soak.SOAK_THREADS, 0,
                         max_batch=4)
        before = server.status()
        figures = soak.soak(server, arrays, args.seconds, args.clients, args.slow, seed=1,
                            max_batch=4)
        time.sleep(2)
        after = server.status()
    finally:
        code = server.stop()
    print(f"warm-up: {warm.good_requests} good, {warm.bad_requests} bad, "
          f"{warm.good_lost} good lost")
    print(f"soak {args.seconds:g} s, {args.clients} clients, {args.slow} slow-loris sockets:")
    print(f"  good requests {figures.good_requests}, lost {figures.good_lost}, "
          f"tries refused for memory then retried {figures.good_retried}")
    print(f"  bad requests {figures.bad_requests}, answered with another code "
          f"{figures.bad_misanswered}")
    for label, status in (("at start", started), ("after warm-up", before),
                          ("after soak", after)):
        print(f"  server {label}: VmRSS {status['VmRSS'] / 1024:.0f} MiB, "
              f"threads {status['Threads']}")
    print(f"  server exit code after SIGTERM: {code}")
    for failure in figures.failures:
        print("  failure:", failure)


if __name__ == "__main__":
    main()
