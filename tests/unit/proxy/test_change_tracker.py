from services.proxy.change_tracker import ChangeTracker
from services.proxy.service_port import ServicePortName

A = ServicePortName("ns", "a", "http", "tcp")
B = ServicePortName("ns", "a", "dns", "udp")


def test_apply_reports_only_what_differs() -> None:
    tracker: ChangeTracker[int] = ChangeTracker()
    target: dict[ServicePortName, int] = {}
    tracker.update("ns/a", {A: 1, B: 2})
    assert tracker.apply(target) == {A, B} and target == {A: 1, B: 2}
    tracker.update("ns/a", {A: 1, B: 3})
    assert tracker.apply(target) == {B} and target[B] == 3
    assert tracker.apply(target) == set()


def test_a_change_undone_before_the_sync_costs_nothing() -> None:
    tracker: ChangeTracker[int] = ChangeTracker()
    target: dict[ServicePortName, int] = {}
    tracker.update("ns/a", {A: 1})
    tracker.apply(target)
    tracker.update("ns/a", {A: 2})
    tracker.update("ns/a", {A: 1})
    assert tracker.pending()
    assert tracker.apply(target) == set() and target == {A: 1}


def test_deletion_removes_the_ports() -> None:
    tracker: ChangeTracker[int] = ChangeTracker()
    target: dict[ServicePortName, int] = {}
    tracker.update("ns/a", {A: 1, B: 2})
    tracker.apply(target)
    tracker.update("ns/a", {})
    assert tracker.apply(target) == {A, B} and target == {}


def test_trigger_times_keep_the_earliest_until_taken() -> None:
    tracker: ChangeTracker[int] = ChangeTracker()
    tracker.update("ns/a", {A: 1}, trigger_time=10.0)
    tracker.update("ns/a", {A: 2}, trigger_time=12.0)
    assert tracker.take_triggers({B}) == {}
    assert tracker.take_triggers({A}) == {A: 10.0}
    assert tracker.take_triggers() == {}
