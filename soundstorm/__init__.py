"""SoundStorm in JAX: model, training masking, training loop and parallel decoding.

Nothing in this package knows about TensorFlow; export/ and runtime/ build on it.
"""

__version__ = "0.1.0"
