"""tensorflow_model_server's command-line flags that `soundstorm serve` accepts, typed.

Names follow tensorflow_serving/model_servers/main.cc, so the TF Serving
command lines in serving_configs/ run against our server; `add_arguments` puts
them on an argparse parser, `from_namespace` reads them back. Boolean flags take
TF Serving's forms: `--flag`, `--flag=true`, `--flag=false`. Not yet TF
Serving's in every respect (the conformance issue): `--host` and
`--max_message_bytes` are ours, `--rest_api_timeout_in_ms` defaults to 600000
(TF Serving: 30000), and most of its other flags are not accepted yet.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path


def flag_bool(text: str) -> bool:
    """A boolean flag's value as TF Serving (absl) reads it."""
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


@dataclasses.dataclass(frozen=True)
class ServerFlags:
    port: int = 8500
    rest_api_port: int = 0
    host: str = "0.0.0.0"
    model_name: str = "soundstorm"
    model_base_path: Path | None = None
    model_config_file: Path | None = None
    model_config_file_poll_wait_seconds: float = 0
    file_system_poll_wait_seconds: float = 1
    enable_batching: bool = False
    batching_parameters_file: Path | None = None
    monitoring_config_file: Path | None = None
    ssl_config_file: Path | None = None
    max_message_bytes: int = 64 * 1024 * 1024
    rest_api_timeout_in_ms: int = 600_000

    @classmethod
    def from_namespace(cls, namespace: argparse.Namespace) -> "ServerFlags":
        return cls(**{field.name: getattr(namespace, field.name)
                      for field in dataclasses.fields(cls)})


_HELP = {
    "port": "gRPC port (default 8500)",
    "rest_api_port": "REST port (default 0: no REST)",
    "model_config_file_poll_wait_seconds": "re-read --model_config_file this often (0: once)",
    "file_system_poll_wait_seconds": "look for new versions this often (default 1)",
    "enable_batching": "batch requests server-side (=true/=false)",
    "max_message_bytes": "largest gRPC message either way (default 64 MiB)",
}
# Accepted so that tensorflow_model_server command lines run unchanged; XLA is always on here.
ACCEPTED_AND_IGNORED = ("xla_cpu_compilation_enabled", "xla_gpu_compilation_enabled")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every ServerFlags field as `--<name>`, with its type and default."""
    for field in dataclasses.fields(ServerFlags):
        flag, default = f"--{field.name}", field.default
        if field.type in ("bool", bool):
            parser.add_argument(flag, nargs="?", const=True, default=default, type=flag_bool,
                                help=_HELP.get(field.name))
            continue
        kind = {"int": int, "float": float, "str": str}.get(str(field.type), Path)
        parser.add_argument(flag, type=kind, default=default, help=_HELP.get(field.name))
    for name in ACCEPTED_AND_IGNORED:
        parser.add_argument(f"--{name}", default="true", help=argparse.SUPPRESS)
