import random

import pytest

from services.proxy.service_port import ServicePortName
from services.proxy.userspace.port_allocator import PortAllocator, PortsExhaustedError
from services.proxy.userspace.roundrobin import LoadBalancerRR, NoEndpointsError

SVC = ServicePortName("ns", "svc", "http", "tcp")
EPS = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_endpoints_are_taken_in_turn() -> None:
    lb = LoadBalancerRR(rng=random.Random(1))
    lb.new_service(SVC, 0)
    lb.update_endpoints(SVC, EPS)
    picks = [lb.next_endpoint(SVC, "1.1.1.1") for _ in range(6)]
    assert sorted(picks[:3]) == sorted(EPS) and picks[3:] == picks[:3]


def test_same_set_in_another_order_keeps_the_rotation() -> None:
    lb = LoadBalancerRR(rng=random.Random(1))
    lb.update_endpoints(SVC, EPS)
    first = lb.next_endpoint(SVC, "c")
    lb.update_endpoints(SVC, list(reversed(EPS)))
    assert lb.next_endpoint(SVC, "c") != first


def test_no_endpoints_is_an_error() -> None:
    lb = LoadBalancerRR()
    with pytest.raises(NoEndpointsError):
        lb.next_endpoint(SVC, "c")
    lb.update_endpoints(SVC, [])
    with pytest.raises(NoEndpointsError):
        lb.next_endpoint(SVC, "c")


def test_client_ip_affinity_sticks_expires_and_resets() -> None:
    clock = Clock()
    lb = LoadBalancerRR(clock=clock, rng=random.Random(2))
    lb.new_service(SVC, 10)
    lb.update_endpoints(SVC, EPS)
    sticky = lb.next_endpoint(SVC, "1.1.1.1")
    clock.now += 9
    assert all(lb.next_endpoint(SVC, "1.1.1.1") == sticky for _ in range(5))
    assert lb.next_endpoint(SVC, "2.2.2.2") != sticky  # other clients keep rotating
    clock.now += 10.5  # last use was 10.5 s ago: expired
    fresh = lb.next_endpoint(SVC, "1.1.1.1")
    assert fresh != sticky
    # a failed dial resets affinity: the next pick moves on
    assert lb.next_endpoint(SVC, "1.1.1.1", reset_affinity=True) != fresh


def test_removed_endpoint_drops_its_affinity_records() -> None:
    lb = LoadBalancerRR(rng=random.Random(3))
    lb.new_service(SVC, 100)
    lb.update_endpoints(SVC, EPS)
    sticky = lb.next_endpoint(SVC, "c")
    lb.update_endpoints(SVC, [e for e in EPS if e != sticky])
    assert lb.services[SVC].affinity == {}
    assert lb.next_endpoint(SVC, "c") != sticky


def test_stale_sticky_sessions_are_cleaned() -> None:
    clock = Clock()
    lb = LoadBalancerRR(clock=clock)
    lb.new_service(SVC, 5)
    lb.update_endpoints(SVC, EPS)
    lb.next_endpoint(SVC, "c")
    clock.now += 6
    lb.cleanup_stale_sticky_sessions()
    assert lb.services[SVC].affinity == {}


def test_port_allocator_scans_from_a_random_start() -> None:
    allocator = PortAllocator(40000, 40002, rng=random.Random(0))
    ports = {allocator.allocate() for _ in range(3)}
    assert ports == {40000, 40001, 40002}
    with pytest.raises(PortsExhaustedError):
        allocator.allocate()
    allocator.release(40001)
    assert allocator.allocate() == 40001
    assert PortAllocator().allocate() == 0  # no range: the kernel picks
