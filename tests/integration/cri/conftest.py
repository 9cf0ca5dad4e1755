"""Fixtures of the CRI conformance tier: one lab (host netns, CNI config, shim) per module,
and a check after every test that it left no container, veth, IP lease or CNI cache entry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.cri.harness import REFERENCE_PLUGINS, Lab


@pytest.fixture(scope="module")
def lab(docker_client: Any) -> Iterator[Lab]:
    if not (REFERENCE_PLUGINS / "bridge").is_file():
        pytest.skip("Debian's containernetworking-plugins are not installed")
    lab = Lab(docker_client)
    try:
        lab.create()
        lab.start()
        yield lab
    finally:
        lab.destroy()


@pytest.fixture
def clean_lab(lab: Lab) -> Iterator[Lab]:
    """The lab, and after the test the proof that it cleaned up after itself."""
    if lab.proc is None:
        lab.start()
    yield lab
    leftovers = lab.leftovers()
    if leftovers:
        lab.remove_containers()
    assert not leftovers, f"the test left these behind: {leftovers}"
