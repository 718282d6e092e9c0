"""SoundStorm in JAX: config, model, training masking, training loop, parallel decoding, and
the training data loader.

The core of the project: it imports neither TensorFlow nor runtime/ nor export/
(tests/test_layering.py); export/ and the apps build on it.
"""

__version__ = "0.1.0"
