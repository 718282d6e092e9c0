"""A model server for development, tests and single machines that speaks TF Serving's API.

It serves the SavedModels `export/` writes over TF Serving's own gRPC services
(the stubs of tensorflow-serving-api) and REST paths, reads its config formats
(ModelServerConfig, batching parameters) and honours its conventions (version
folders, policies, labels, warm-up records, error codes), so the same models,
configs and clients work against it and against `tensorflow_model_server`.
See docs/serving.md.
"""
