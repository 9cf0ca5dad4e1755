from tests.unit.apiserver.conftest import client, server

__all__ = ["client", "server"]
