"""serving_configs/ parses as TF Serving parses it, and its manifests are valid Kubernetes.

Offline and quick: the text protos go through the real ModelServerConfig and
the mirrored messages of protos/tf_serving_config.proto; the manifests through
kubernetes-validate's bundled JSON schemas.
"""

import copy
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from soundstorm.protos import tf_serving_config_pb2

CONFIGS = Path(__file__).resolve().parent.parent / "serving_configs"
K8S = CONFIGS / "kubernetes"
# Schemas bundled with kubernetes-validate (no download); a version GKE runs.
KUBERNETES_VERSION = "1.33.0"
MANIFESTS = sorted(K8S.rglob("*.yaml"))
DEPLOYMENTS = [K8S / "deployment.yaml", K8S / "gpu" / "deployment.yaml",
               K8S / "tpu" / "deployment.yaml"]
XLA_FLAGS = ("--xla_cpu_compilation_enabled=true", "--xla_gpu_compilation_enabled=true")
FILE_FLAGS = ("--model_config_file", "--batching_parameters_file",
              "--monitoring_config_file", "--ssl_config_file")


def parse(name, message):
    return text_format.Parse((CONFIGS / name).read_text(), message)


def documents(path):
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def server_container(path):
    (deployment,) = documents(path)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return deployment, container


def flag_values(args, flag):
    return [arg.split("=", 1)[1] for arg in args if arg.startswith(flag + "=")]


def readme_commands():
    """Each command of a ```bash block in the README, continuation lines joined."""
    text = (CONFIGS / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        commands += [line.strip() for line in block.replace("\\\n", " ").splitlines()
                     if line.strip()]
    return commands


def test_model_config_parses_with_tf_servings_own_message():
    config = parse("models.config", model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path, model.model_platform) == (
        "soundstorm", "/models/soundstorm", "tensorflow")
    # A label must name a version the policy keeps loaded, or it routes nowhere.
    assert model.model_version_policy.WhichOneof("policy_choice") == "specific"
    kept = set(model.model_version_policy.specific.versions)
    assert set(model.version_labels) == {"stable", "canary"}
    assert set(model.version_labels.values()) <= kept


def test_batching_parameters_suit_the_model():
    params = parse("batching_parameters.txt", tf_serving_config_pb2.BatchingParameters())
    sizes = list(params.allowed_batch_sizes)
    # TF Serving's own rules: increasing, and the last one is max_batch_size.
    assert sizes == sorted(set(sizes)) and sizes[0] >= 1
    assert sizes[-1] == params.max_batch_size.value == 16
    for field in ("batch_timeout_micros", "num_batch_threads", "max_enqueued_batches"):
        assert params.HasField(field) and getattr(params, field).value > 0, field
    # Requests of different lengths share batches; `lengths` keeps them exact.
    assert params.pad_variable_length_inputs


def test_monitoring_exposes_prometheus():
    config = parse("monitoring.config", tf_serving_config_pb2.MonitoringConfig())
    assert config.prometheus_config.enable
    assert config.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_ssl_config_holds_pem_text_not_paths():
    config = parse("ssl.config", tf_serving_config_pb2.SSLConfig())
    assert config.server_key.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert config.server_cert.startswith("-----BEGIN CERTIFICATE-----\n")
    assert config.server_cert.endswith("-----END CERTIFICATE-----\n")


def test_mirrored_messages_keep_tf_servings_field_numbers():
    fields = {f.name: f.number for f in tf_serving_config_pb2.BatchingParameters.DESCRIPTOR.fields}
    assert fields == {"max_batch_size": 1, "batch_timeout_micros": 2, "max_enqueued_batches": 3,
                      "num_batch_threads": 4, "thread_pool_name": 5, "allowed_batch_sizes": 6,
                      "pad_variable_length_inputs": 7, "enable_large_batch_splitting": 8,
                      "max_execution_batch_size": 9}
    ssl = {f.name: f.number for f in tf_serving_config_pb2.SSLConfig.DESCRIPTOR.fields}
    assert ssl == {"server_key": 1, "server_cert": 2, "custom_ca": 3, "client_verify": 4}


def test_readme_command_lines_carry_the_needed_flags_and_existing_files():
    commands = readme_commands()
    servers = [c for c in commands if c.startswith(("tensorflow_model_server", "docker run"))]
    assert len(servers) >= 4 and any("soundstorm serve" in c for c in commands)
    for command in servers:
        args = shlex.split(command)
        assert sum(flag in args for flag in XLA_FLAGS) == 1, command
        if command.startswith("docker run"):
            # The GPU image, GPU devices and XLA's GPU flag go together.
            gpu = "tensorflow/serving:2.20.0-gpu" in args
            assert gpu or "tensorflow/serving:2.20.0" in args, command
            assert ("--gpus" in args) == gpu == ("--xla_gpu_compilation_enabled=true" in args)
        for flag in ("--rest_api_timeout_in_ms", "--model_config_file", "--enable_batching"):
            assert flag_values(args, flag), f"{flag} missing: {command}"
    for command in commands:
        # Every config file named (local path or the /config mount) is one of ours.
        for name in re.findall(r"(?:serving_configs|/config)/([\w./-]+)", command):
            assert (CONFIGS / name).exists(), f"{name} does not exist: {command}"


@pytest.mark.parametrize("path", DEPLOYMENTS, ids=lambda p: str(p.relative_to(K8S)))
def test_deployment_args_match_the_configs(path):
    deployment, container = server_container(path)
    args = container["args"]
    assert any(flag in args for flag in XLA_FLAGS)
    assert ("--xla_gpu_compilation_enabled=true" in args) == container["image"].endswith("-gpu")
    assert flag_values(args, "--rest_api_timeout_in_ms") == ["120000"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    (configmap,) = documents(K8S / "configmap.yaml")
    for flag in FILE_FLAGS:
        for value in flag_values(args, flag):
            # The file is in the ConfigMap, mounted where the flag looks.
            assert value.rsplit("/", 1)[0] == mounts["config"], value
            assert value.rsplit("/", 1)[1] in configmap["data"], value
    # The models volume holds models.config's base path.
    model = parse("models.config", model_server_config_pb2.ModelServerConfig()
                  ).model_config_list.config[0]
    assert model.base_path.startswith(mounts["models"] + "/")
    assert container["readinessProbe"]["httpGet"]["path"] == f"/v1/models/{model.name}"
    assert {p["containerPort"] for p in container["ports"]} == {8500, 8501}
    if "tpu" in path.parts:
        assert "--saved_model_tags=tpu,serve" in args
        selector = deployment["spec"]["template"]["spec"]["nodeSelector"]
        assert selector["cloud.google.com/gke-tpu-accelerator"] == "tpu-v4-podslice"
        assert "cloud.google.com/gke-tpu-topology" in selector
        assert container["resources"]["limits"]["google.com/tpu"] > 0
    else:
        assert flag_values(args, "--batching_parameters_file")


def test_configmap_carries_the_config_files_unchanged():
    (configmap,) = documents(K8S / "configmap.yaml")
    assert "ssl.config" not in configmap["data"]  # a private key: a Secret, not a ConfigMap
    for name, text in configmap["data"].items():
        assert text == (CONFIGS / name).read_text(), f"{name} differs from serving_configs/{name}"


def test_service_and_hpa_point_at_the_deployment():
    (deployment,), (service,), (hpa,) = (documents(K8S / name) for name in
                                         ("deployment.yaml", "service.yaml", "hpa.yaml"))
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} == {"grpc", "http"}
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    # Utilization is relative to requests: without a CPU request the HPA cannot scale.
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"]["cpu"]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(K8S)))
def test_manifest_is_valid_kubernetes(path):
    for doc in documents(path):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("break_it", [
    lambda c: c.__setitem__("portz", c.pop("ports")),              # misspelt field
    lambda c: c["ports"][0].__setitem__("containerPort", "8500x"),  # wrong type
    lambda c: c.pop("name"),                                       # required field
], ids=["unknown-field", "wrong-type", "missing-required"])
def test_validation_rejects_a_broken_deployment(break_it):
    (deployment,) = documents(K8S / "deployment.yaml")
    broken = copy.deepcopy(deployment)
    break_it(broken["spec"]["template"]["spec"]["containers"][0])
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def _server_command_lines():
    """(where, flags) of every committed tensorflow_model_server / soundstorm serve command
    line: the README's commands and docker runs, and each Deployment's args."""
    lines = []
    for command in readme_commands():
        args = shlex.split(command)
        while args and re.match(r"^[A-Z_]+=", args[0]):  # LD_PRELOAD=... before the command
            args.pop(0)
        if command.startswith("docker run"):
            image = next(i for i, arg in enumerate(args) if arg.startswith("tensorflow/serving"))
            lines.append((f"README: {command[:60]}", args[image + 1:]))
        elif args[:1] == ["tensorflow_model_server"] or args[:2] == ["soundstorm", "serve"]:
            lines.append((f"README: {command[:60]}", args[2 if args[0] == "soundstorm" else 1:]))
    for path in DEPLOYMENTS:
        lines.append((str(path.relative_to(K8S)), server_container(path)[1]["args"]))
    return lines


def _start_up_checks(flags_list):
    """TF Serving's start-up validations over one command line, without starting anything:
    the flag checks of Server::BuildAndStart, the config file's parse, and the label check
    ServerCore::ReloadConfig runs before any version has loaded."""
    import argparse
    from soundstorm.runtime.serving.flags import ServerFlags, add_arguments, tf_serving_start_up_checks
    from soundstorm.runtime.serving.manager import ModelManager
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = ServerFlags.from_namespace(parser.parse_args(flags_list))
    tf_serving_start_up_checks(flags)
    # The /config mount holds serving_configs/ (the ConfigMap mirrors it; a test checks that).
    config = parse(re.sub(r"^(/config|serving_configs)/", "", flags.model_config_file),
                   model_server_config_pb2.ModelServerConfig())
    ModelManager(config, log=lambda message: None, allow_version_labels_for_unavailable_models=(
        flags.allow_version_labels_for_unavailable_models))


@pytest.mark.parametrize("where, flags", _server_command_lines(), ids=lambda v: str(v)[:40])
def test_committed_command_lines_pass_tf_servings_start_up_checks(where, flags):
    """Each committed command line starts under tensorflow_model_server's own checks; without
    --allow_version_labels_for_unavailable_models the same line would not (so the check
    is live: models.config labels versions that have not loaded yet)."""
    from soundstorm.protos.status import StatusError
    _start_up_checks(flags)
    without = [f for f in flags if not f.startswith("--allow_version_labels_for_unavailable")]
    with pytest.raises(StatusError, match="which is not currently available for inference"):
        _start_up_checks(without)


def test_every_committed_image_is_pinned_to_a_release():
    for path in DEPLOYMENTS:
        image = server_container(path)[1]["image"]
        assert not image.endswith(":latest") and ":latest-" not in image, (path, image)
    assert ":latest" not in (CONFIGS / "README.md").read_text()


# TPU conversion (docs/tpu.md)

TPU_JOB = K8S / "tpu" / "convert-job.yaml"
MODELS = CONFIGS.parent / "models" / "soundstorm"


def _tpu_job():
    job, configmap = documents(TPU_JOB)
    spec = job["spec"]["template"]["spec"]
    (prepare, converter), (finish,) = spec["initContainers"], spec["containers"]
    assert prepare["env"] == finish["env"]  # one VERSION
    return job, configmap, converter, finish


def test_tpu_convert_job_converts_the_committed_export_with_its_own_options():
    job, configmap, converter, finish = _tpu_job()
    env = {e["name"]: e for e in converter["env"]}
    version = env["VERSION"]["value"]
    assert {e["name"]: e["value"] for e in finish["env"]} == {"VERSION": version}
    assert job["metadata"]["name"].endswith(f"-{version}")
    exported = MODELS / version
    # The options are the ones the export wrote (export/tpu.py converter_options).
    options = configmap["data"]["converter_options.txtpb"]
    assert options == (exported / "assets.extra" / "tpu_converter_options.txtpb").read_text()
    assert env["CONVERTER_OPTIONS"]["valueFrom"]["configMapKeyRef"] == {
        "name": configmap["metadata"]["name"], "key": "converter_options.txtpb"}
    assert converter["args"] == [f"--input_model_dir=/models/soundstorm/$(VERSION)",
                                 "--output_model_dir=/models-tpu/soundstorm/.convert-$(VERSION)",
                                 "--converter_options_string=$(CONVERTER_OPTIONS)"]
    # It writes where the TPU Deployment serves from.
    (tpu_deployment,) = documents(K8S / "tpu" / "deployment.yaml")
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
              for v in job["spec"]["template"]["spec"]["volumes"]}
    served = {v["name"]: v["persistentVolumeClaim"]["claimName"]
              for v in tpu_deployment["spec"]["template"]["spec"]["volumes"]
              if "persistentVolumeClaim" in v}
    assert claims["models-tpu"] == served["models"]


def test_tpu_convert_jobs_shell_step_finishes_as_finish_conversion_does(tmp_path):
    """Runs the Job's `finish` script with this machine's sh on a fake export and converter
    output, and compares the tree with export.tpu.finish_conversion's."""
    from soundstorm.export.tpu import finish_conversion
    _, _, converter, finish = _tpu_job()
    version = finish["env"][0]["value"]
    export = tmp_path / "models" / "soundstorm" / version
    (export / "assets.extra").mkdir(parents=True)
    for name, data in [("model_contract.pb", b"contract"), ("tf_serving_warmup_requests", b"cpu"),
                       ("tpu_warmup_requests", b"tpu"), ("tpu_converter_options.txtpb", b"o")]:
        (export / "assets.extra" / name).write_bytes(data)
    staging = tmp_path / "models-tpu" / "soundstorm" / f".convert-{version}"
    staging.mkdir(parents=True)
    (staging / "saved_model.pb").write_bytes(b"converted")
    expected = tmp_path / "expected"
    shutil.copytree(staging, expected)
    finish_conversion(export, expected)
    script = finish["args"][0].replace("/models-tpu/", f"{tmp_path}/models-tpu/").replace(
        "/models/", f"{tmp_path}/models/")
    subprocess.run(["sh", "-ec", script], env={"VERSION": version, "PATH": "/usr/bin:/bin"},
                   check=True)
    final = tmp_path / "models-tpu" / "soundstorm" / version
    assert not staging.exists()
    tree = lambda root: {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert tree(final) == tree(expected)
    assert (final / "assets.extra" / "tf_serving_warmup_requests").read_bytes() == b"tpu"
    # A version is immutable: a second run stops instead of moving staging inside it.
    staging.mkdir()
    again = subprocess.run(["sh", "-ec", script], env={"VERSION": version, "PATH": "/usr/bin:/bin"})
    assert again.returncode != 0 and staging.exists() and not (final / staging.name).exists()
