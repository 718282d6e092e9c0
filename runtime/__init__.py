"""Serving-side code: codec, text frontend, model server and client; knows nothing of JAX."""
