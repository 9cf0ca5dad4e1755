"""A node (netns + shim + apiserver + kubelet) per test, torn down whatever happens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.kubelet.harness import REFERENCE_PLUGINS, Node


@pytest.fixture
async def node(docker_client: Any) -> AsyncIterator[Node]:
    if not (REFERENCE_PLUGINS / "bridge").is_file():
        pytest.skip("Debian's containernetworking-plugins are not installed")
    lab = Node(docker_client)
    try:
        await lab.start()
        yield lab
    finally:
        await lab.destroy()
