"""The kubelet's --node-lease-duration-seconds: the Lease's duration, renewed every quarter of
it as Kubernetes' kubelet does; anything but a positive whole number of seconds is refused."""

from __future__ import annotations

import pytest

from pinnace_cmd import kubelet
from pinnace_cmd.node import parse_flags
from services.kubelet.config import KubeletConfig


def config(*flags: str) -> KubeletConfig:
    return kubelet.config_from(parse_flags(kubelet.add_arguments, ["--node-name", "n1", *flags]))


def test_the_lease_is_renewed_every_quarter_of_its_duration() -> None:
    default = config()
    assert (default.node_lease_duration_seconds, default.lease_renew_interval) == (40, 10.0)
    short = config("--node-lease-duration-seconds=8")
    assert (short.node_lease_duration_seconds, short.lease_renew_interval) == (8, 2.0)


@pytest.mark.parametrize("value", ["0", "-3", "2.5", "ten"])
def test_a_duration_that_is_not_a_positive_whole_number_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="node-lease-duration-seconds"):
        config(f"--node-lease-duration-seconds={value}")
