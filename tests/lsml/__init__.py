"""A real Label Studio ML backend for tests: the `label-studio-ml` package from PyPI, in a virtual
environment of its own (its Flask 1.1 / rq pins clash with LabelHub's), serving `backend_model.py`."""
