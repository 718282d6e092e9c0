"""The applications, on top of everything else: the `soundstorm` command (cli/), corpus
building (corpus/), evaluation and sampling (evaluation/), benchmarks (bench/).

They may import every layer below (the JAX core `soundstorm`, `export`, `runtime`,
`protos`); nothing below imports them (docs/architecture.md, tests/test_layering.py).
"""
