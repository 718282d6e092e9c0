"""The applications, on top of everything else: the `soundstorm` command (cli.py), corpus
building (corpus/), evaluation (evaluation/), benchmarks (bench/) and sampling (sample.py).

They may import every layer below (the JAX core `soundstorm`, `export`, `runtime`,
`protos`); nothing below imports them (docs/architecture.md, tests/test_layering.py).
"""
