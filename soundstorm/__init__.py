"""SoundStorm in JAX: config, model, training masking, training loop, parallel decoding, and
the training data loader.

The core of the project: it imports neither TensorFlow nor runtime/ nor export/
(tests/test_layering.py); export/ and the apps build on it.
"""

__version__ = "0.1.0"

# The project's other packages, installed under this one (soundstorm.runtime and so on:
# pyproject.toml's package-dir), so that nothing generic lands at the top level of
# site-packages. A checkout keeps them as top-level folders beside this one: there, the
# checkout root is searched as well. Tools that map import names to folders use this list.
SUBPACKAGE_FOLDERS = ("runtime", "export", "protos", "apps")


def folder_module(name: str) -> str:
    """An import name as the checkout's folders spell it: soundstorm.runtime.client ->
    runtime.client; any other name unchanged."""
    head, _, rest = name.partition(".")
    if head == "soundstorm" and rest.split(".")[0] in SUBPACKAGE_FOLDERS:
        return rest
    return name


def _search_checkout() -> None:
    import pathlib
    here = pathlib.Path(__file__).resolve().parent
    checkout = here.parent
    if not (here / "runtime").is_dir() and all(
            (checkout / folder / "__init__.py").is_file() for folder in SUBPACKAGE_FOLDERS):
        __path__.append(str(checkout))  # noqa: F821 (a package's __path__)


_search_checkout()
