"""Fixtures of the model service tests: a real Label Studio ML backend (tests/lsml)."""

from tests.lsml.fixtures import backend, lsml_server  # noqa: F401 - fixtures
