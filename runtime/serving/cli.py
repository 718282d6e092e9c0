"""`soundstorm serve`: tensorflow_model_server's flags (flags.py) -> a running ModelServer."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from google.protobuf import text_format

from protos import tf_serving_config_pb2
from protos.status import StatusError, invalid_argument, not_found
from runtime.serving.batching import BatchingOptions
from runtime.serving.flags import ServerFlags
from runtime.serving.server import (ModelServer, ServerOptions, read_model_config,
                                    single_model_config)


def _read_text_proto(path: Path, message):
    if not Path(path).is_file():
        raise not_found(f"no such file: {path}")
    try:
        return text_format.Parse(Path(path).read_text(), message)
    except text_format.ParseError as error:
        raise invalid_argument(f"{path}: not a {type(message).__name__} text proto: {error}") from None


def options_from_flags(args: ServerFlags) -> ServerOptions:
    batching = None
    if args.enable_batching:
        batching = (BatchingOptions.from_file(args.batching_parameters_file)
                    if args.batching_parameters_file else BatchingOptions())
    metrics_path = ""
    if args.monitoring_config_file:
        monitoring = _read_text_proto(args.monitoring_config_file,
                                      tf_serving_config_pb2.MonitoringConfig())
        if monitoring.prometheus_config.enable:
            metrics_path = monitoring.prometheus_config.path or "/monitoring/prometheus/metrics"
    ssl = None
    if args.ssl_config_file:
        ssl = _read_text_proto(args.ssl_config_file, tf_serving_config_pb2.SSLConfig())
    return ServerOptions(host=args.host, port=args.port, rest_api_port=args.rest_api_port,
                         poll_seconds=args.file_system_poll_wait_seconds, batching=batching,
                         max_message_bytes=args.max_message_bytes, metrics_path=metrics_path,
                         ssl=ssl, rest_timeout_seconds=args.rest_api_timeout_in_ms / 1000)


def serve_from_flags(args: ServerFlags) -> int:
    if (args.model_config_file is None) == (args.model_base_path is None):
        raise invalid_argument("give either --model_config_file or --model_base_path")
    if args.model_config_file is not None:
        config = read_model_config(args.model_config_file)
    else:
        if not args.model_base_path.is_dir():
            raise not_found(f"--model_base_path {args.model_base_path} is not a folder")
        config = single_model_config(args.model_name, args.model_base_path)
    # Handlers first: a SIGTERM that arrives while models load still shuts down gracefully.
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    server = ModelServer(config, options_from_flags(args)).start()
    while not stopping.wait(args.model_config_file_poll_wait_seconds or None):
        if args.model_config_file is not None:
            try:
                server.manager.reload_config(read_model_config(args.model_config_file))
            except StatusError as error:  # keep serving the last good config
                print(f"[serve] model config not reloaded: {error}")
    print("[serve] shutting down: finishing in-flight requests")
    server.stop(grace_seconds=30)
    return 0
