"""Which model versions are loaded: TF Serving's version policies, polling, labels and status.

Every poll lists each model's base path (integer folder names are versions;
anything else, such as an export's hidden staging folder, is ignored), works
out the versions the policy aspires to and loads the missing ones (load, then
replay the warm-up records) before they take traffic. Versions no longer
aspired to are unloaded only once an aspired version is available, so a model
never stops serving during a roll-out (TF Serving's availability-preserving
policy). A version that fails to load is reported in GetModelStatus with its
error, is not retried and does not count towards the policy, so the last good
version keeps serving.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Callable

import grpc
from tensorflow_serving.apis import get_model_status_pb2, status_pb2
from tensorflow_serving.config import model_server_config_pb2

from protos.status import invalid_argument, not_found
from runtime.savedmodel.layout import version_dirs
from runtime.savedmodel.servable import Servable
from runtime.savedmodel.tf_status import status_of

State = get_model_status_pb2.ModelVersionStatus.State


@dataclasses.dataclass
class VersionRecord:
    version: int
    state: int = State.START
    error: str = ""
    error_code: grpc.StatusCode = grpc.StatusCode.OK
    servable: Servable | None = None


@dataclasses.dataclass
class ModelEntry:
    config: model_server_config_pb2.ModelConfig
    versions: dict[int, VersionRecord] = dataclasses.field(default_factory=dict)


def aspired_versions(policy: model_server_config_pb2.FileSystemStoragePathSourceConfig
                     .ServableVersionPolicy, candidates: list[int]) -> set[int]:
    """The versions a policy wants, among loadable candidates (sorted ascending)."""
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return set(candidates)
    if kind == "specific":
        return set(candidates) & set(policy.specific.versions)
    count = policy.latest.num_versions if kind == "latest" and policy.latest.num_versions else 1
    return set(candidates[-count:])


def check_config(config: model_server_config_pb2.ModelServerConfig) -> None:
    if config.WhichOneof("config") != "model_config_list":
        raise invalid_argument("only model_config_list configs are supported")
    names = [model.name for model in config.model_config_list.config]
    if len(set(names)) != len(names) or not all(names):
        raise invalid_argument(f"model names must be non-empty and unique, got {names}")
    for model in config.model_config_list.config:
        if model.model_platform not in ("", "tensorflow"):
            raise invalid_argument(f"model {model.name}: platform {model.model_platform!r} is "
                                   "not served here (only 'tensorflow')")
        if not model.base_path:
            raise invalid_argument(f"model {model.name} has no base_path")


class ModelManager:
    def __init__(self, config: model_server_config_pb2.ModelServerConfig,
                 log: Callable[[str], None] = print,
                 on_change: Callable[[], None] | None = None):
        check_config(config)
        self._lock = threading.RLock()
        self._models: dict[str, ModelEntry] = {}
        self._log = log
        self._on_change = on_change or (lambda: None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._poll_lock = threading.Lock()
        self.reload_config(config, poll=False)

    # Configuration and polling

    def reload_config(self, config: model_server_config_pb2.ModelServerConfig,
                      poll: bool = True) -> None:
        """Serve exactly the models of `config` (HandleReloadConfigRequest)."""
        check_config(config)
        with self._lock:
            wanted = {model.name: model for model in config.model_config_list.config}
            for name in list(self._models):
                if name not in wanted:
                    self._unload_all(self._models.pop(name))
            for name, model in wanted.items():
                entry = self._models.get(name)
                if entry is None or entry.config.base_path != model.base_path:
                    if entry is not None:
                        self._unload_all(entry)
                    self._models[name] = ModelEntry(config=model)
                else:
                    entry.config = model
        if poll:
            self.poll()

    def poll(self) -> None:
        """One pass over every base path: load what is aspired, then unload what is not."""
        with self._poll_lock:
            with self._lock:
                entries = list(self._models.items())
            for name, entry in entries:
                self._poll_model(name, entry)

    def _poll_model(self, name: str, entry: ModelEntry) -> None:
        on_disk = version_dirs(Path(entry.config.base_path))
        failed = {v for v, r in entry.versions.items() if r.state == State.END and r.error}
        aspired = aspired_versions(entry.config.model_version_policy,
                                   [v for v in on_disk if v not in failed])
        for version in sorted(aspired - {v for v, r in entry.versions.items()
                                         if r.state == State.AVAILABLE}):
            self._load(name, entry, version, on_disk[version])
        with self._lock:
            if any(entry.versions.get(v) and entry.versions[v].state == State.AVAILABLE
                   for v in aspired) or not aspired:
                for version, record in entry.versions.items():
                    if version not in aspired and record.state == State.AVAILABLE:
                        record.state, record.servable = State.END, None
                        self._log(f"[serve] unloaded {name} version {version}")
        self._on_change()

    def _load(self, name: str, entry: ModelEntry, version: int, path: Path) -> None:
        record = VersionRecord(version, State.LOADING)
        with self._lock:
            entry.versions[version] = record
        try:
            servable = Servable(name, version, path)
            count, seconds = servable.warm_up()
        except Exception as error:  # a corrupt version must never take the server down
            # The load's own status, as TF Serving's GetModelStatus reports it (ToStatusProto,
            # util/status_util.cc): TensorFlow's code and message, or ours; UNKNOWN otherwise.
            with self._lock:
                record.state = State.END
                record.error_code, record.error = status_of(error, grpc.StatusCode.UNKNOWN)
            self._log(f"[serve] could not load {name} version {version} from {path}: "
                      f"{record.error.splitlines()[0]}")
            return
        with self._lock:
            record.servable, record.state = servable, State.AVAILABLE
        self._log(f"[serve] {name} version {version} available ({count} warm-up requests, "
                  f"{seconds:.1f} s)")

    def _unload_all(self, entry: ModelEntry) -> None:
        for record in entry.versions.values():
            record.state, record.servable = State.END, None

    def start_polling(self, interval_seconds: float) -> None:
        """Polls every `interval_seconds` in a background thread (0: never again)."""
        if interval_seconds <= 0:
            return

        def loop():
            while not self._stop.wait(interval_seconds):
                try:
                    self.poll()
                except Exception as error:  # keep polling whatever one pass hit
                    self._log(f"[serve] poll failed: {error}")
        self._thread = threading.Thread(target=loop, name="version-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # Lookups

    def model_names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    def _entry(self, name: str) -> ModelEntry:
        entry = self._models.get(name)
        if entry is None:
            raise not_found(f"Servable not found for request: model {name!r} is not served "
                            f"(models: {sorted(self._models)})")
        return entry

    def resolve(self, name: str, version: int | None = None, label: str = "") -> Servable:
        """The servable a ModelSpec names: a version, a label, or the latest available."""
        with self._lock:
            entry = self._entry(name)
            if label:
                if label not in entry.config.version_labels:
                    raise not_found(f"model {name!r} has no version label {label!r}")
                version = entry.config.version_labels[label]
            available = {v: r for v, r in entry.versions.items() if r.state == State.AVAILABLE}
            if version is None:
                if not available:
                    raise not_found(f"Servable not found for request: Latest({name}) "
                                    "(no version is available yet)")
                return available[max(available)].servable
            if version not in available:
                raise not_found(f"Servable not found for request: Specific({name}, {version})")
            return available[version].servable

    def status(self, name: str, version: int | None = None
               ) -> list[get_model_status_pb2.ModelVersionStatus]:
        with self._lock:
            entry = self._entry(name)
            records = sorted(entry.versions.values(), key=lambda r: r.version)
            if version is not None:
                records = [r for r in records if r.version == version]
                if not records:
                    raise not_found(f"model {name!r} has no version {version}")
            return [get_model_status_pb2.ModelVersionStatus(
                version=r.version, state=r.state,
                status=status_pb2.StatusProto(
                    error_code=r.error_code.value[0],
                    error_message=r.error)) for r in records]

    def available(self) -> dict[str, list[int]]:
        with self._lock:
            return {name: sorted(v for v, r in entry.versions.items()
                                 if r.state == State.AVAILABLE)
                    for name, entry in self._models.items()}
