"""TF Serving's side of a SavedModel: its on-disk layout and a version loaded in this process.

Used by export (which writes the layout), the model server and the client's
embedded backend (which load it); it imports no JAX and nothing of them.
"""
