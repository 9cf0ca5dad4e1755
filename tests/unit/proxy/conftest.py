"""The in-process apiserver of the apiserver unit tests, for the proxy's informer tests."""

from tests.unit.apiserver.conftest import client, server

__all__ = ["client", "server"]
