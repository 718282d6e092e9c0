"""`soundstorm bench`: the project's speed claims measured in one run (docs/benchmarks.md)."""
