"""Training data for the JAX core: the corpus format and the loader that serves batches
(the corpus is built by apps/corpus)."""
