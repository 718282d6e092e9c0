"""`soundstorm serve`: tensorflow_model_server's flags (flags.py) -> a running ModelServer."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from google.protobuf import text_format

from soundstorm.protos import tf_serving_config_pb2
from soundstorm.protos.status import StatusError, invalid_argument, not_found
from soundstorm.runtime.serving.allocator import startup_note
from soundstorm.runtime.serving.batching import BatchingOptions
from soundstorm.runtime.serving.flags import ServerFlags, grpc_channel_arguments, validate
from soundstorm.runtime.serving.server import (LOG, ModelServer, ServerOptions, read_model_config,
                                    single_model_config)


def _read_text_proto(path: Path, message):
    if not Path(path).is_file():
        raise not_found(f"no such file: {path}")
    try:
        return text_format.Parse(Path(path).read_text(), message)
    except text_format.ParseError as error:
        raise invalid_argument(f"{path}: not a {type(message).__name__} text proto: {error}") from None


def check_ssl_config(config, path) -> None:
    """Raises INVALID_ARGUMENT naming the file unless its key and certificate (and CA, if
    any) load as PEM: checked before any port is bound or model loaded, where gRPC would
    only say "Failed to bind to address"."""
    import ssl
    import tempfile
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:  # ssl reads PEM from files only
        key, cert = Path(folder) / "key.pem", Path(folder) / "cert.pem"
        key.touch(mode=0o600)
        key.write_text(config.server_key)
        cert.write_text(config.server_cert)
        try:
            context.load_cert_chain(cert, key)
            if config.custom_ca:
                context.load_verify_locations(cadata=config.custom_ca)
        except (ssl.SSLError, ValueError) as error:
            raise invalid_argument(f"--ssl_config_file {path}: server_key, server_cert and "
                                   f"custom_ca must be PEM text of a matching key and "
                                   f"certificate ({error})") from None


def options_from_flags(args: ServerFlags) -> ServerOptions:
    batching = None
    if args.enable_batching:
        batching = (BatchingOptions.from_file(Path(args.batching_parameters_file))
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
        check_ssl_config(ssl, args.ssl_config_file)
    threads = (args.tensorflow_intra_op_parallelism or args.tensorflow_session_parallelism,
               args.tensorflow_inter_op_parallelism or args.tensorflow_session_parallelism)
    return ServerOptions(
        host=args.host, port=args.port, rest_api_port=args.rest_api_port,
        poll_seconds=args.file_system_poll_wait_seconds, batching=batching,
        max_message_bytes=args.max_message_bytes, metrics_path=metrics_path, ssl=ssl,
        rest_timeout_seconds=args.rest_api_timeout_in_ms / 1000,
        rest_threads=args.rest_api_num_threads, rest_cors=args.rest_api_enable_cors_support,
        grpc_threads=args.grpc_max_threads,
        grpc_healthcheck=args.enable_grpc_healthcheck_service,
        serialization_as_tensor_content=args.enable_serialization_as_tensor_content,
        signature_method_name_check=args.enable_signature_method_name_check,
        max_num_load_retries=args.max_num_load_retries,
        load_retry_interval_s=args.load_retry_interval_micros / 1e6,
        allow_version_labels_for_unavailable_models=(
            args.allow_version_labels_for_unavailable_models),
        grpc_socket_path=args.grpc_socket_path,
        grpc_channel_arguments=tuple(grpc_channel_arguments(args.grpc_channel_arguments)),
        warm_up=args.enable_model_warmup, session_threads=threads,
        max_request_batch_size=args.max_request_batch_size,
        max_inflight_bytes=args.max_inflight_bytes,
        reload_config_roots=tuple(Path(root) for root in
                                  args.reload_config_allowed_roots.split(",") if root))


def model_config_from_flags(args: ServerFlags):
    """The ModelServerConfig the flags name: --model_config_file wins over
    --model_name/--model_base_path, as in TF Serving (server.cc BuildAndStart)."""
    if args.model_config_file:
        return read_model_config(Path(args.model_config_file))
    if not Path(args.model_base_path).is_dir():
        raise not_found(f"--model_base_path {args.model_base_path} is not a folder")
    return single_model_config(args.model_name, Path(args.model_base_path))


def version_text() -> str:
    """What `--version` prints: TF Serving's two lines, with this package's version."""
    from importlib import metadata
    import tensorflow as tf
    try:
        ours = metadata.version("soundstorm")
    except metadata.PackageNotFoundError:
        ours = "unknown"
    return f"TensorFlow ModelServer: soundstorm {ours}\nTensorFlow Library: {tf.__version__}"


def serve_from_flags(args: ServerFlags) -> int:
    if args.version:
        print(version_text())
        return 0
    validate(args)
    config = model_config_from_flags(args)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Handlers first: a SIGTERM that arrives while models load still shuts down gracefully.
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    server = ModelServer(config, options_from_flags(args)).start()
    LOG.info(startup_note())  # after start: a failed start stays one line
    while not stopping.wait(args.model_config_file_poll_wait_seconds or None):
        if args.model_config_file:
            try:
                server.manager.reload_config(read_model_config(Path(args.model_config_file)))
            except StatusError as error:  # keep serving the last good config
                LOG.error(f"PollFilesystemAndReloadConfig failed to ReloadConfig: {error}")
    LOG.info("shutting down: finishing in-flight requests")
    server.stop(grace_seconds=30)
    return 0
