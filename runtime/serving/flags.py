"""tensorflow_model_server's command-line flags, all 48, typed, with TF Serving's defaults.

Names, types and defaults are those of tensorflow_serving/model_servers/main.cc
and server.h (Server::Options), so every TF Serving command line runs against
`soundstorm serve` unchanged. Each flag is one of three kinds (`FLAGS`):

- used: it does here what it does in TF Serving;
- no effect: accepted because it tunes something this server does not have
  (TFLite pools, the profiler, file system caches); its value changes nothing;
- refused when set: it asks for something this server cannot do (ALTS, TFLite,
  another platform); a non-default value stops the server at start with a line
  naming the flag and why.

`validate` applies TF Serving's start-up checks (Server::BuildAndStart, server.cc).
Five flags are ours: `--host` (TF Serving always listens on 0.0.0.0),
`--max_message_bytes` (TF Serving allows INT32_MAX; ours bounds a request's memory,
declared shapes included), `--max_request_batch_size` (a request's batch, over
gRPC and REST, checked before the model runs), `--max_inflight_bytes` (what all
requests in flight may hold together) and `--reload_config_allowed_roots`
(TF Serving lets any client that reaches the gRPC port reload the model config;
ours refuses unless the operator names the folders reloads may serve from).
Boolean flags take TF Serving's forms: `--flag`, `--flag=true`, `--flag=false`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from soundstorm.runtime.serving.admission import DEFAULT_MAX_INFLIGHT_BYTES
from soundstorm.protos.status import invalid_argument

_CPUS = os.cpu_count() or 1


def flag_bool(text: str) -> bool:
    """A boolean flag's value as TF Serving (absl) reads it."""
    if text.lower() in ("true", "1", "yes", "t", "y"):
        return True
    if text.lower() in ("false", "0", "no", "f", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


@dataclasses.dataclass(frozen=True)
class ServerFlags:
    # Used.
    port: int = 8500
    grpc_socket_path: str = ""
    rest_api_port: int = 0
    rest_api_num_threads: int = 4 * _CPUS
    rest_api_timeout_in_ms: int = 30_000
    rest_api_enable_cors_support: bool = False
    enable_batching: bool = False
    allow_version_labels_for_unavailable_models: bool = False
    batching_parameters_file: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0
    model_name: str = "default"
    model_base_path: str = ""
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60_000_000
    file_system_poll_wait_seconds: int = 1
    tensorflow_session_parallelism: int = 0
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    ssl_config_file: str = ""
    saved_model_tags: str = "serve"
    grpc_channel_arguments: str = ""
    grpc_max_threads: int = 4 * _CPUS
    enable_model_warmup: bool = True
    version: bool = False
    monitoring_config_file: str = ""
    enable_grpc_healthcheck_service: bool = False
    enable_serialization_as_tensor_content: bool = False
    enable_signature_method_name_check: bool = False
    # No effect here.
    num_load_threads: int = 0
    num_unload_threads: int = 0
    flush_filesystem_caches: bool = True
    per_process_gpu_memory_fraction: float = 0.0
    num_request_iterations_for_warmup: int = 0
    remove_unused_fields_from_bundle_metagraph: bool = True
    num_tflite_pools: int = _CPUS
    num_tflite_interpreters_per_pool: int = 1
    xla_cpu_compilation_enabled: bool = False
    xla_gpu_compilation_enabled: bool = False
    enable_profiler: bool = True
    skip_initialize_tpu: bool = False
    # Refused when set.
    enable_per_model_batching_parameters: bool = False
    tensorflow_session_config_file: str = ""
    use_alts_credentials: bool = False
    platform_config_file: str = ""
    prefer_tflite_model: bool = False
    thread_pool_factory_config_file: str = ""
    mixed_precision: str = ""
    # Ours.
    host: str = "0.0.0.0"
    max_message_bytes: int = 64 * 1024 * 1024
    reload_config_allowed_roots: str = ""
    max_request_batch_size: int = 64
    max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES

    @classmethod
    def from_namespace(cls, namespace: argparse.Namespace) -> "ServerFlags":
        return cls(**{field.name: getattr(namespace, field.name)
                      for field in dataclasses.fields(cls)})


# Why each flag that changes nothing here is accepted.
NO_EFFECT = {
    "num_load_threads": "versions load one after another in the polling thread",
    "num_unload_threads": "an unloaded version is freed when its last request ends",
    "flush_filesystem_caches": "no file system cache is kept between loads",
    "per_process_gpu_memory_fraction": "runs on the CPU",
    "num_request_iterations_for_warmup": "each warm-up record is replayed once",
    "remove_unused_fields_from_bundle_metagraph": "the meta graph's size does not matter here",
    "num_tflite_pools": "no TFLite models are served",
    "num_tflite_interpreters_per_pool": "no TFLite models are served",
    "xla_cpu_compilation_enabled": "XLA is always on (a jax2tf model runs only with XLA)",
    "xla_gpu_compilation_enabled": "XLA is always on (a jax2tf model runs only with XLA)",
    "enable_profiler": "no profiler service",
    "skip_initialize_tpu": "no TPU",
}
# Why each flag a server here cannot honour is refused when set.
REFUSED = {
    "enable_per_model_batching_parameters": "per-model batching files are not read; use "
                                            "--batching_parameters_file",
    "tensorflow_session_config_file": "a session config file is not read; use "
                                      "--tensorflow_intra_op_parallelism and "
                                      "--tensorflow_inter_op_parallelism",
    "use_alts_credentials": "ALTS needs Google Cloud's ALTS handshaker; use --ssl_config_file",
    "platform_config_file": "only the tensorflow platform is served",
    "prefer_tflite_model": "TFLite models are not served",
    "thread_pool_factory_config_file": "custom thread pools are not supported",
    "mixed_precision": "the SavedModel's own dtypes are used (export bfloat16 with "
                       "`soundstorm export --variables-dtype bfloat16`)",
}
# What each used flag does (main.cc's descriptions, shortened; defaults as TF Serving's).
_HELP = {
    "port": "gRPC port; 0 disables it (default 8500)",
    "grpc_socket_path": "also serve gRPC on this Unix socket",
    "rest_api_port": "REST port, different from --port; 0: no REST (default 0)",
    "rest_api_num_threads": "REST worker threads (default 4 per CPU)",
    "rest_api_timeout_in_ms": "REST predict timeout (default 30000; <= 0: none)",
    "rest_api_enable_cors_support": "send CORS headers on REST replies",
    "enable_batching": "batch concurrent Predict requests per signature",
    "allow_version_labels_for_unavailable_models":
        "allow new version labels on versions that are not loaded yet",
    "batching_parameters_file": "BatchingParameters text proto (needs --enable_batching)",
    "model_config_file": "ModelServerConfig text proto of the models to serve; "
                         "wins over --model_name and --model_base_path",
    "model_config_file_poll_wait_seconds": "re-read --model_config_file this often; "
                                           "0: read once (default 0)",
    "model_name": "name of the model at --model_base_path (default: default)",
    "model_base_path": "the model's folder of numbered versions",
    "max_num_load_retries": "retries of a failed load; 0: one try (default 5)",
    "load_retry_interval_micros": "wait between load retries (default 60000000: 1 min)",
    "file_system_poll_wait_seconds": "look for new versions this often; 0: once (default 1)",
    "tensorflow_session_parallelism": "threads of each model's Session (default: "
                                      "TensorFlow's choice)",
    "tensorflow_intra_op_parallelism": "threads within one op (default: TensorFlow's choice)",
    "tensorflow_inter_op_parallelism": "ops run at once (default: TensorFlow's choice)",
    "ssl_config_file": "SSLConfig text proto: serve gRPC over TLS",
    "saved_model_tags": "comma-separated tags of the meta graph to load (default serve)",
    "grpc_channel_arguments": "gRPC server arguments, e.g. grpc.max_connection_age_ms=2000",
    "grpc_max_threads": "most gRPC worker threads (default 4 per CPU)",
    "enable_model_warmup": "replay assets.extra/tf_serving_warmup_requests before a version "
                           "takes traffic (default true)",
    "version": "print the version and exit",
    "monitoring_config_file": "MonitoringConfig text proto: Prometheus metrics on REST",
    "enable_grpc_healthcheck_service": "serve grpc.health.v1.Health",
    "enable_serialization_as_tensor_content": "send outputs as tensor_content, not typed "
                                              "fields",
    "enable_signature_method_name_check": "Predict only predict, classify and regress "
                                          "signatures",
    "host": "address to listen on (ours; TF Serving listens on 0.0.0.0)",
    "max_message_bytes": "largest gRPC message or REST body (ours; default 64 MiB)",
    "max_request_batch_size": "largest batch one request may ask for, over gRPC and REST "
                              "(ours; default 64; TF Serving has no bound)",
    "max_inflight_bytes": "bytes all requests in flight may hold together, gRPC and REST; "
                          "past it a request is RESOURCE_EXHAUSTED (HTTP 429) (ours; default "
                          "1 GiB; 0: no bound)",
    "reload_config_allowed_roots": "comma-separated folders: ModelService.HandleReloadConfigRequest "
                                   "may serve base paths under them (ours; default empty: the "
                                   "RPC is refused with PERMISSION_DENIED, which TF Serving "
                                   "never does)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every ServerFlags field as `--<name>`, with its type and default."""
    for field in dataclasses.fields(ServerFlags):
        flag, default = f"--{field.name}", field.default
        if field.name in NO_EFFECT:
            help_text = f"accepted, no effect here: {NO_EFFECT[field.name]}"
        elif field.name in REFUSED:
            help_text = f"refused when set: {REFUSED[field.name]}"
        else:
            help_text = _HELP[field.name]
        if field.type in ("bool", bool):
            parser.add_argument(flag, nargs="?", const=True, default=default, type=flag_bool,
                                help=help_text)
            continue
        kind = {"int": int, "float": float, "str": str}[str(field.type)]
        parser.add_argument(flag, type=kind, default=default, help=help_text)


def grpc_channel_arguments(text: str) -> list[tuple[str, int | str]]:
    """`--grpc_channel_arguments`: "name=value,..." with int values as ints (server.cc)."""
    arguments = []
    for item in filter(None, text.split(",")):
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise invalid_argument(f"--grpc_channel_arguments: {item!r} is not name=value")
        try:
            arguments.append((name, int(value)))
        except ValueError:
            arguments.append((name, value))
    return arguments


def tf_serving_start_up_checks(flags: ServerFlags) -> None:
    """TF Serving's own start-up checks on the flags (Server::BuildAndStart, server.cc), in
    its order, with its words; StatusError INVALID_ARGUMENT for the first that fails."""
    if not flags.port and not flags.grpc_socket_path:
        raise invalid_argument("At least one of server_options.grpc_port or "
                               "server_options.grpc_socket_path must be set.")
    if flags.use_alts_credentials and flags.ssl_config_file:
        raise invalid_argument("Either use_alts_credentials must be false or ssl_config_file "
                               "must be empty.")
    if not flags.model_base_path and not flags.model_config_file:
        raise invalid_argument("Both server_options.model_base_path and "
                               "server_options.model_config_file are empty!")
    if flags.batching_parameters_file and not flags.enable_batching:
        raise invalid_argument("server_options.batching_parameters_file is set without setting "
                               "server_options.enable_batching to true.")
    if (flags.tensorflow_session_parallelism > 0 and flags.tensorflow_intra_op_parallelism > 0
            and flags.tensorflow_inter_op_parallelism > 0):
        raise invalid_argument(
            "Either configure server_options.tensorflow_session_parallelism or "
            "(server_options.tensorflow_intra_op_parallelism, "
            "server_options.tensorflow_inter_op_parallelism) separately. You cannot configure "
            "all.")


def validate(flags: ServerFlags) -> None:
    """What `soundstorm serve` checks before it binds a port: TF Serving's checks, then the
    flags this server refuses (REFUSED, `--saved_model_tags` other than serve, a malformed
    `--grpc_channel_arguments`)."""
    tf_serving_start_up_checks(flags)
    defaults = ServerFlags()
    for name, why in REFUSED.items():
        if getattr(flags, name) != getattr(defaults, name):
            raise invalid_argument(f"--{name} is not supported by soundstorm serve: {why}")
    if flags.saved_model_tags != "serve":
        raise invalid_argument("--saved_model_tags: only 'serve' meta graphs are served here "
                               f"(got {flags.saved_model_tags!r})")
    grpc_channel_arguments(flags.grpc_channel_arguments)
    if flags.max_request_batch_size < 1:
        raise invalid_argument(f"--max_request_batch_size must be >= 1, got "
                               f"{flags.max_request_batch_size}")
    if 0 < flags.max_inflight_bytes < flags.max_message_bytes:
        raise invalid_argument(f"--max_inflight_bytes ({flags.max_inflight_bytes}) must be 0 or "
                               f"at least --max_message_bytes ({flags.max_message_bytes})")
