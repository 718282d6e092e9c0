"""The package as a user installs it: the wheel (not the editable checkout) in a fresh virtual
environment, run from a temporary directory far from the checkout.

The fresh environment gets the wheel with --no-deps and sees the dependencies through a .pth
line naming this environment's site-packages (nothing downloads); the checkout's editable
finder is not loaded there, so every project module comes from the wheel.
"""

import email.parser
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the files git knows (tracked, or new and not ignored):
    an in-tree build would reuse whatever an earlier build left in build/."""
    import shutil
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in listed.splitlines():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(out), str(source)],
                   check=True, capture_output=True, timeout=600)
    return next(out.glob("soundstorm-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> dict:
    """(bin folder, environment for running it) of a fresh venv holding the wheel."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(subprocess.check_output(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        text=True).strip())
    (purelib / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "--quiet", "--no-deps", str(wheel)], check=True, timeout=600)
    home = tmp_path_factory.mktemp("home")
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "SOUNDSTORM_CODEC_DIR", "VIRTUAL_ENV")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"))
    return {"python": str(venv / "bin" / "python"), "soundstorm": str(venv / "bin" / "soundstorm"),
            "purelib": purelib, "env": env,
            "cwd": tmp_path_factory.mktemp("elsewhere")}


def _run(installed, *args, env=None, timeout=600):
    """The installed `soundstorm` command (or, with "-c", the venv's python) from elsewhere."""
    program = installed["python"] if args[0] == "-c" else installed["soundstorm"]
    return subprocess.run([program, *args], capture_output=True, text=True,
                          cwd=installed["cwd"], env=env or installed["env"], timeout=timeout)


def test_the_base_install_does_not_pull_the_training_stack(wheel):
    """Requires-Dist: JAX, flax, optax and orbax only under the `train` extra."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(name).decode())
        files = archive.namelist()
    requires = metadata.get_all("Requires-Dist")
    name = lambda line: re.split(r"[<>=!~; \[]", line, maxsplit=1)[0]
    base = {name(line) for line in requires if "extra ==" not in line}
    train = {name(line) for line in requires if 'extra == "train"' in line}
    stack = {"jax", "flax", "optax", "orbax-checkpoint"}
    assert not base & stack, base
    assert train == stack and {"tensorflow", "grpcio", "num2words"} <= base
    assert "soundstorm/runtime/client/py.typed" in files
    assert "soundstorm/runtime/frontend/phonemes_v2.txt" in files
    # One top-level package: nothing generic (runtime, export, protos, apps) beside it.
    assert {name.split("/")[0] for name in files if not name.split("/")[0].endswith(
        (".dist-info", ".data"))} == {"soundstorm"}


def test_the_package_list_names_every_package_folder():
    """pyproject.toml lists the packages by hand (package-dir maps the checkout's folders
    under `soundstorm`): a new package folder must be added there to be installed."""
    import tomllib
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    folders = {".".join(path.parent.relative_to(ROOT).parts) for folder in (
        "soundstorm", "runtime", "export", "protos", "apps")
        for path in (ROOT / folder).rglob("__init__.py") if "__pycache__" not in path.parts}
    assert listed == {name if name.startswith("soundstorm") else f"soundstorm.{name}"
                      for name in folders}


def test_the_installed_command_runs_from_any_directory(installed, speech_model, speech,
                                                       tmp_path):
    import soundfile
    modules = _run(installed, "-c", "import soundstorm.runtime.client as client; "
                                    "print(client.__file__)")
    assert modules.stdout.startswith(str(installed["purelib"] / "soundstorm")), modules
    voice = tmp_path / "voice.wav"
    soundfile.write(voice, speech[0], 16_000)
    out = tmp_path / "hello.wav"
    # The default model is relative to the working directory: from elsewhere it is one line
    # saying how to name one, before TensorFlow loads.
    missing = _run(installed, "synthesize", "--text", "Hello.", "--voice",
                   str(voice), "--out", str(out))
    assert missing.returncode == 3, missing.stderr
    assert "no model at models/soundstorm (the default, relative to" in missing.stderr
    assert "pass --model PATH" in missing.stderr and len(missing.stderr.splitlines()) == 1
    # The codec's default folder is the per-user one (nothing there yet: it says how to fill it).
    where = _run(installed, "-c", "from soundstorm.runtime.codec.lyra import default_codec_dir; "
                                  "print(default_codec_dir())")
    assert where.stdout.strip() == str(Path(installed["env"]["XDG_DATA_HOME"]) / "soundstorm" /
                                       "codecs" / "lyra_v2"), where
    no_codec = _run(installed, "synthesize", "--model", str(speech_model),
                    "--text", "Hello.", "--voice", str(voice), "--out", str(out))
    assert no_codec.returncode != 0 and "soundstorm codec fetch" in no_codec.stderr, no_codec
    # SOUNDSTORM_CODEC_DIR overrides it; then the installed command speaks, quietly.
    env = {**installed["env"], "SOUNDSTORM_CODEC_DIR": os.environ.get(
        "SOUNDSTORM_CODEC_DIR", str(ROOT.parent / "shared" / "codecs" / "lyra_v2"))}
    run = _run(installed, "synthesize", "--model", str(speech_model),
               "--text", "Hello there.\n", "--voice", str(voice), "--out", str(out), env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"wrote {out}") and out.stat().st_size > 1000
    version = _run(installed, "--version")
    assert version.stdout.startswith("soundstorm ") and "not installed" not in version.stdout
