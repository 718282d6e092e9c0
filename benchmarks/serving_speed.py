"""Model server overhead and throughput: gRPC against a direct SavedModel call; batching at 1, 4, 16 clients.

    .venv/bin/python benchmarks/serving_speed.py [--workdir runs/small-speech] [--seconds 3]

Exports the run (one bucket of `--seconds`), then in this one process:
1. overhead: the same request through the server's gRPC Predict (a stub from
   tensorflow-serving-api over localhost), as a direct Session.run of the version
   the server loaded (TF Serving's path, without gRPC), and as a call of the
   signature loaded with TF2's tf.saved_model.load, alternately, medians of
   `--repeats`; gRPC / Session is the server's own cost;
2. throughput: 1, 4 and 16 concurrent clients, each sending requests back to
   back, against a server without batching and one with TF Serving-style
   batching (max 16, allowed sizes 1, 2, 4, 8, 16, 20 ms timeout). Every
   setting first runs one untimed round (compiles the batch shapes), then
   `--rounds` timed rounds.
Server and clients share the process (and its 2 cores, on the reference machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path


from soundstorm.apps.bench.config import BATCHING
from soundstorm.apps.bench.export_timing import ensure_run, random_request
from soundstorm.apps.bench.measure import alternating_medians, concurrent_throughput

CLIENTS = (1, 4, 16)


def _prompt_frames(config, seconds: float) -> int:
    """A third of the request is prompt."""
    return round(seconds * config.frame_rate_hz) // 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("runs/small-speech"))
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from soundstorm.export import ExportConfig, export_savedmodel
    from soundstorm.runtime.serving.batching import BatchingOptions
    from soundstorm.runtime.serving.server import ModelServer, ServerOptions, single_model_config
    from soundstorm.run_dir import RunDirectory

    workdir = ensure_run(args.workdir)
    config, _ = RunDirectory(workdir).read_config()
    base = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    version_dir = export_savedmodel(workdir, base, ExportConfig(
        max_seconds=args.seconds, max_prompt_seconds=args.seconds / 3,
        bucket_seconds=(args.seconds,), platforms=("cpu",)), log=None)
    model_config = single_model_config("soundstorm", version_dir.parent)

    def proto_of(arrays):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "soundstorm"
        for key, value in arrays.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        return request

    def start(batching):
        server = ModelServer(model_config, ServerOptions(host="127.0.0.1", port=0, poll_seconds=0,
                                                         batching=batching),
                             log=lambda message: None).start()
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        return server, prediction_service_pb2_grpc.PredictionServiceStub(channel)

    # 1. Overhead.
    server, stub = start(None)
    prompt_frames = _prompt_frames(config, args.seconds)
    arrays = random_request(config, args.seconds, 0, prompt_frames=prompt_frames)
    request = proto_of(arrays)
    signature = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    tensors = {key: tf.constant(value) for key, value in arrays.items()}
    tf2 = lambda: signature(**tensors)["acoustic_tokens"].numpy()
    servable = server.manager.resolve("soundstorm")
    session = lambda: servable.run("serving_default", arrays, ["acoustic_tokens"])
    remote = lambda: stub.Predict(request, timeout=600)
    tf2(), session(), remote()
    tf2_s, session_s, remote_s = alternating_medians([tf2, session, remote], args.repeats)
    server.stop(1)

    # 2. Throughput.
    requests = [proto_of(random_request(config, args.seconds, seed, prompt_frames=prompt_frames))
                for seed in range(16)]
    throughput = {}
    for mode, batching in (("no batching", None), ("batching", BatchingOptions(**BATCHING))):
        server, stub = start(batching)
        for clients in CLIENTS:
            per_client = max(1, 8 // clients)
            throughput[(mode, clients)] = concurrent_throughput(
                lambda i: stub.Predict(requests[i], timeout=600), clients, per_client, args.rounds)
            total = clients * per_client * args.rounds
            seconds = total / throughput[(mode, clients)]
            print(f"{mode}, {clients} clients: {total} requests in {seconds:.1f} s",
                  file=sys.stderr)
        server.stop(1)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; run {workdir}; "
          f"{args.seconds:g} s of audio per request ({args.seconds / 3:g} s prompt), batch 1, "
          "server and clients in one process")
    print(f"TF2 signature call      {tf2_s * 1e3:8.1f} ms (median of {args.repeats})")
    print(f"Session.run, in process {session_s * 1e3:8.1f} ms")
    print(f"gRPC Predict            {remote_s * 1e3:8.1f} ms")
    print(f"gRPC / Session.run      {remote_s / session_s:8.3f} x "
          f"({(remote_s - session_s) * 1e3:+.1f} ms per request: the server's own cost)")
    print(f"Session.run / TF2       {session_s / tf2_s:8.3f} x")
    print(f"{'clients':>8} {'no batching req/s':>18} {'batching req/s':>15} {'ratio':>6} "
          f"{'audio s/s (batching)':>21}")
    for clients in CLIENTS:
        plain, batched = throughput[("no batching", clients)], throughput[("batching", clients)]
        print(f"{clients:8d} {plain:18.2f} {batched:15.2f} {batched / plain:6.2f} "
              f"{batched * args.seconds:21.2f}")


if __name__ == "__main__":
    main()
