"""pytest_test: one tests/<name>.py run by pytest, as tools/test.sh runs it outside Bazel."""

load("@pypi//:requirements.bzl", "requirement")
load("@rules_python//python:defs.bzl", "py_test")

def pytest_test(name, deps = [], data = [], size = "medium", **kwargs):
    """A py_test of `<name>.py` with pytest as its main module.

    Every test file gets pyproject.toml (pytest's settings) and :conftest, which
    pytest loads for every file here; other keywords (timeout, tags) pass through.

    Args:
      name: the test file's name without `.py`.
      deps: what the test file imports, besides conftest and pytest.
      data: files the test reads, besides pyproject.toml.
      size: Bazel's test size.
      **kwargs: passed to py_test.
    """
    py_test(
        name = name,
        size = size,
        srcs = [name + ".py"],
        args = [
            "-p",
            "no:cacheprovider",
            "$(rootpath %s.py)" % name,
        ],
        data = ["//:pyproject.toml"] + data,
        main_module = "pytest",
        deps = [
            ":conftest",
            requirement("pytest"),
        ] + deps,
        **kwargs
    )
