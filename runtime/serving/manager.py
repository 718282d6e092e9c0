"""Which model versions are loaded: TF Serving's version policies, polling, labels and status.

Every poll lists each model's base path (integer folder names are versions;
anything else, such as an export's hidden staging folder, is ignored), works
out the versions the policy aspires to and loads the missing ones (load, then
replay the warm-up records) before they take traffic. Versions no longer
aspired to are unloaded only once an aspired version is available, so a model
never stops serving during a roll-out (TF Serving's availability-preserving
policy). A version that fails to load is tried again `max_num_load_retries`
times, `load_retry_interval_s` apart (TF Serving's LoaderHarness::Load through
util/retrier.cc: 5 retries a minute apart by default), so a version copied in
two steps loads once its files are all there; after the last try it is reported
in GetModelStatus with its error, is not tried again while its folder stays, and
does not count towards the policy, so the last good version keeps serving.
"""

from __future__ import annotations

import dataclasses
import threading
import logging
from pathlib import Path
from typing import Callable

import grpc
from tensorflow_serving.apis import get_model_status_pb2, status_pb2
from tensorflow_serving.config import model_server_config_pb2

from soundstorm.protos.status import StatusError, invalid_argument, not_found
from soundstorm.runtime.savedmodel.layout import version_dirs
from soundstorm.runtime.savedmodel.servable import Servable
from soundstorm.runtime.savedmodel.tf_status import status_of

State = get_model_status_pb2.ModelVersionStatus.State

# Timestamped lines through `logging` (soundstorm serve configures the format).
LOG = logging.getLogger("runtime.serving")


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
                 log: Callable[[str], None] = LOG.info,
                 on_change: Callable[[], None] | None = None,
                 max_num_load_retries: int = 5, load_retry_interval_s: float = 60.0,
                 allow_version_labels_for_unavailable_models: bool = False,
                 warm_up: bool = True, session_threads: tuple[int, int] = (0, 0)):
        check_config(config)
        self.warm_up, self.session_threads = warm_up, session_threads
        self.allow_labels_for_unavailable = allow_version_labels_for_unavailable_models
        self.max_num_load_retries = max_num_load_retries
        self.load_retry_interval_s = load_retry_interval_s
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
        """Serve exactly the models of `config` (HandleReloadConfigRequest). Its labels are
        checked first against what is loaded now, so at start-up (nothing loaded yet) any
        label needs --allow_version_labels_for_unavailable_models, as in TF Serving."""
        check_config(config)
        with self._lock:
            self._check_labels(config)
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

    def _check_labels(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """FAILED_PRECONDITION for a label on a version that is not AVAILABLE; with the
        allowance, only for moving an existing label to such a version
        (ServerCore::UpdateModelVersionLabelMap, model_servers/server_core.cc)."""
        for model in config.model_config_list.config:
            entry = self._models.get(model.name)
            available = set() if entry is None else {
                v for v, r in entry.versions.items() if r.state == State.AVAILABLE}
            current = {} if entry is None else dict(entry.config.version_labels)
            for label, version in sorted(model.version_labels.items()):
                if version in available:
                    continue
                if self.allow_labels_for_unavailable and current.get(label, version) == version:
                    continue
                raise StatusError(f"Request to assign label to version {version} of model "
                                  f"{model.name}, which is not currently available for "
                                  "inference", grpc.StatusCode.FAILED_PRECONDITION)

    def poll(self) -> None:
        """One pass over every base path: load what is aspired, then unload what is not."""
        with self._poll_lock:
            with self._lock:
                entries = list(self._models.items())
            for name, entry in entries:
                self._poll_model(name, entry)

    def _poll_model(self, name: str, entry: ModelEntry) -> None:
        on_disk = version_dirs(Path(entry.config.base_path))
        with self._lock:
            # A failed version whose folder went away may come back fixed: try it then.
            for version in [v for v, r in entry.versions.items()
                            if r.state == State.END and r.error and v not in on_disk]:
                del entry.versions[version]
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
                        self._log(f"unloaded {name} version {version}")
        self._on_change()

    def _load(self, name: str, entry: ModelEntry, version: int, path: Path) -> None:
        """Loads and warms one version, with TF Serving's retries; a version that still fails
        ends as END with the load's status (ToStatusProto, util/status_util.cc)."""
        record = VersionRecord(version, State.LOADING)
        with self._lock:
            entry.versions[version] = record
        for attempt in range(self.max_num_load_retries + 1):
            if attempt:
                self._log(f"Retrying of Loading servable: {{name: {name} version: {version}}} "
                          f"retry: {attempt}")
                if self._stop.wait(max(self.load_retry_interval_s, 0)) or not path.is_dir():
                    break  # shutting down, or the version went away (CancelLoadServableRetry)
            try:
                servable = Servable(name, version, path, *self.session_threads)
                count, seconds = servable.warm_up() if self.warm_up else (0, 0.0)
            except Exception as error:  # a corrupt version must never take the server down
                with self._lock:
                    record.error_code, record.error = status_of(error, grpc.StatusCode.UNKNOWN)
                self._log(f"Loading servable: {{name: {name} version: {version}}} failed: "
                          f"{record.error.splitlines()[0]}")
                continue
            with self._lock:
                record.servable, record.state = servable, State.AVAILABLE
                record.error_code, record.error = grpc.StatusCode.OK, ""
            self._log(f"{name} version {version} available ({count} warm-up requests, "
                      f"{seconds:.1f} s)")
            return
        with self._lock:
            record.state = State.END

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
                    self._log(f"poll failed: {error}")
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

    def resolve(self, name: str, version: int | None = None, label: str = "") -> Servable:
        """The servable a ModelSpec names: a version, a label, or the latest available.

        Raises, with TF Serving's codes and words: INVALID_ARGUMENT for an empty name
        (ServableRequestFromModelSpec, model_servers/server_core.cc) or a label the model
        lacks (GetModelVersionForLabel, same file); NOT_FOUND for a model or version that
        is not loaded (BasicManager::GetUntypedServableHandle, core/manager.h).
        """
        if not name:
            raise invalid_argument("ModelSpec has no name specified.")
        with self._lock:
            entry = self._models.get(name)
            if label:
                if entry is None or label not in entry.config.version_labels:
                    raise invalid_argument(f"Unrecognized servable version label: {label}")
                version = entry.config.version_labels[label]
            request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
            available = {} if entry is None else {
                v: r for v, r in entry.versions.items() if r.state == State.AVAILABLE}
            if version is None and available:
                return available[max(available)].servable
            if version not in available:
                raise not_found(f"Servable not found for request: {request}")
            return available[version].servable

    def status(self, name: str, version: int | None = None
               ) -> list[get_model_status_pb2.ModelVersionStatus]:
        """Every version the server has seen, newest first, or the one asked for; NOT_FOUND
        otherwise (GetModelStatusImpl, model_servers/get_model_status_impl.cc)."""
        with self._lock:
            entry = self._models.get(name)
            records = ([] if entry is None else
                       sorted(entry.versions.values(), key=lambda r: -r.version))
            if version is not None:
                records = [r for r in records if r.version == version]
                if not records:
                    raise not_found(f"Could not find version {version} of model {name}")
            if not records:
                raise not_found(f"Could not find any versions of model {name}")
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
