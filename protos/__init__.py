"""The project's own wire contracts (proto3), with generated Python code beside them."""
