"""Each filter against Kubernetes' documented behaviour (pure functions, no apiserver)."""

from __future__ import annotations

import pytest

from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2
from services.scheduler.filters.base import CycleState
from services.scheduler.filters.interpod import InterPodAffinity
from services.scheduler.filters.node import NodeName, NodeReady, NodeUnschedulable
from services.scheduler.filters.node_affinity import NodeAffinity
from services.scheduler.filters.policy import CheckNodeLabelPresence, CheckServiceAffinity
from services.scheduler.filters.ports import NodePorts
from services.scheduler.filters.resources import NodeResourcesFit
from services.scheduler.filters.taints import TaintToleration
from services.scheduler.filters.volumes import DiskConflict, VolumeNodeAffinity
from services.scheduler.framework import FitError
from services.scheduler.resources import pod_requests
from tests.unit.scheduler.helpers import cluster, framework, info, make_node, make_pod


def run(flt, pod, node_name, cache):
    pi = info(pod)
    state = CycleState(pi, cache)
    assert flt.prefilter(state) is None
    return flt.filter(pi, cache.nodes[node_name], state)


# ---------------------------------------------------------------- resources


def test_requests_take_the_largest_init_container_and_add_overhead() -> None:
    pod = make_pod(cpu="500m", memory="1Gi", init=[{"cpu": "2"}, {"memory": "512Mi"}])
    pod.spec.overhead["cpu"] = "100m"
    requests = pod_requests(pod.spec)
    assert (requests.milli_cpu, requests.memory) == (2100, 1024**3)


def test_resources_fit_and_every_shortage_is_reported() -> None:
    cache = cluster([make_node("n", cpu="1", memory="1Gi", extra={"example.com/gpu": "1"})])
    flt = NodeResourcesFit()
    assert run(flt, make_pod(cpu="1", memory="1Gi"), "n", cache) is None
    assert run(flt, make_pod(cpu="1100m", memory="2Gi"), "n", cache) == (
        "Insufficient cpu",
        "Insufficient memory",
    )
    assert run(flt, make_pod(extra={"example.com/gpu": "2"}), "n", cache) == ("Insufficient example.com/gpu",)
    assert run(flt, make_pod(extra={"ephemeral-storage": "1Gi"}), "n", cache) == (
        "Insufficient ephemeral-storage",
    )


def test_resources_count_existing_pods_and_the_pod_limit() -> None:
    cache = cluster(
        [make_node("n", cpu="1", pods="2")],
        [make_pod("a", cpu="600m", node="n"), make_pod("b", node="n")],
    )
    assert run(NodeResourcesFit(), make_pod(cpu="500m"), "n", cache) == ("Too many pods", "Insufficient cpu")


def test_best_effort_pods_fit_anywhere_with_room_for_a_pod() -> None:
    cache = cluster([make_node("n", cpu="0", memory="0")])
    assert run(NodeResourcesFit(), make_pod(), "n", cache) is None


# ---------------------------------------------------------------- ports


@pytest.mark.parametrize(
    ("used", "wanted", "conflict"),
    [
        ((8080, "TCP", ""), (8080, "TCP", ""), True),
        ((8080, "TCP", ""), (8080, "UDP", ""), False),
        ((8080, "TCP", "10.0.0.1"), (8080, "TCP", "10.0.0.2"), False),
        ((8080, "TCP", "10.0.0.1"), (8080, "TCP", "0.0.0.0"), True),
        ((8080, "TCP", "0.0.0.0"), (8080, "TCP", "10.0.0.2"), True),
        ((8080, "TCP", ""), (8081, "TCP", ""), False),
    ],
)
def test_host_ports(used, wanted, conflict) -> None:
    cache = cluster([make_node("n")], [make_pod("a", node="n", ports=[used])])
    result = run(NodePorts(), make_pod(ports=[wanted]), "n", cache)
    assert (result is not None) is conflict


# ---------------------------------------------------------------- node name, selector, affinity


def test_node_name() -> None:
    cache = cluster([make_node("a"), make_node("b")])
    pod = make_pod()
    pod.spec.node_name = "a"
    assert run(NodeName(), pod, "a", cache) is None
    assert run(NodeName(), pod, "b", cache) == ("node(s) didn't match the requested node name",)


def required(*terms: list[tuple[str, str, list[str]]]) -> core_pb2.Affinity:
    affinity = core_pb2.Affinity()
    selector = affinity.node_affinity.required_during_scheduling_ignored_during_execution
    for term in terms:
        t = selector.node_selector_terms.add()
        for key, op, values in term:
            t.match_expressions.add(key=key, operator=op, values=values)
    return affinity


@pytest.mark.parametrize(
    ("expression", "fits"),
    [
        (("zone", "In", ["a", "b"]), True),
        (("zone", "In", ["c"]), False),
        (("zone", "NotIn", ["c"]), True),
        (("zone", "NotIn", ["a"]), False),
        (("zone", "Exists", []), True),
        (("gpu", "Exists", []), False),
        (("gpu", "DoesNotExist", []), True),
        (("cores", "Gt", ["8"]), True),
        (("cores", "Gt", ["16"]), False),
        (("cores", "Lt", ["16"]), True),
        (("zone", "Gt", ["1"]), False),
        (("cores", "Lt", ["notanumber"]), False),
    ],
)
def test_required_node_affinity_operators(expression, fits) -> None:
    cache = cluster([make_node("n", labels={"zone": "a", "cores": "12"})])
    result = run(NodeAffinity(), make_pod(affinity=required([expression])), "n", cache)
    assert (result is None) is fits


def test_node_affinity_terms_are_ored_and_node_selector_anded() -> None:
    cache = cluster([make_node("n", labels={"zone": "a", "disk": "ssd"})])
    ored = required([("zone", "In", ["x"])], [("disk", "In", ["ssd"])])
    assert run(NodeAffinity(), make_pod(affinity=ored), "n", cache) is None
    both = make_pod(affinity=ored, node_selector={"zone": "b"})
    assert run(NodeAffinity(), both, "n", cache) == ("node(s) didn't match Pod's node affinity/selector",)
    assert run(NodeAffinity(), make_pod(node_selector={"zone": "a", "disk": "ssd"}), "n", cache) is None


def test_empty_node_selector_terms_match_nothing() -> None:
    cache = cluster([make_node("n")])
    affinity = core_pb2.Affinity()
    affinity.node_affinity.required_during_scheduling_ignored_during_execution.SetInParent()
    assert run(NodeAffinity(), make_pod(affinity=affinity), "n", cache) is not None


def test_match_fields_on_node_name() -> None:
    cache = cluster([make_node("a"), make_node("b")])
    affinity = core_pb2.Affinity()
    term = (
        affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms.add()
    )
    term.match_fields.add(key="metadata.name", operator="In", values=["b"])
    pod = make_pod(affinity=affinity)
    assert run(NodeAffinity(), pod, "a", cache) is not None
    assert run(NodeAffinity(), pod, "b", cache) is None


# ---------------------------------------------------------------- taints, cordon, readiness


def toleration(key="", operator="Equal", value="", effect="") -> core_pb2.Toleration:
    return core_pb2.Toleration(key=key, operator=operator, value=value, effect=effect)


@pytest.mark.parametrize(
    ("taint", "tolerations", "fits"),
    [
        (("dedicated", "gpu", "NoSchedule"), [], False),
        (("dedicated", "gpu", "NoExecute"), [], False),
        (("dedicated", "gpu", "PreferNoSchedule"), [], True),
        (
            ("dedicated", "gpu", "NoSchedule"),
            [toleration("dedicated", value="gpu", effect="NoSchedule")],
            True,
        ),
        (("dedicated", "gpu", "NoSchedule"), [toleration("dedicated", value="cpu")], False),
        (("dedicated", "gpu", "NoSchedule"), [toleration("dedicated", "Exists")], True),
        (("dedicated", "gpu", "NoSchedule"), [toleration(operator="Exists")], True),
        (("dedicated", "gpu", "NoSchedule"), [toleration("dedicated", "Exists", effect="NoExecute")], False),
    ],
)
def test_taints_and_tolerations(taint, tolerations, fits) -> None:
    cache = cluster([make_node("n", taints=[taint])])
    result = run(TaintToleration(), make_pod(tolerations=tolerations), "n", cache)
    assert (result is None) is fits
    if not fits:
        assert result == (f"node(s) had untolerated taint {{{taint[0]}: {taint[1]}}}",)


def test_cordoned_and_not_ready_nodes() -> None:
    cache = cluster([make_node("cordoned", unschedulable=True), make_node("down", ready=False)])
    assert run(NodeUnschedulable(), make_pod(), "cordoned", cache) == ("node(s) were unschedulable",)
    tolerant = make_pod(tolerations=[toleration("node.kubernetes.io/unschedulable", "Exists")])
    assert run(NodeUnschedulable(), tolerant, "cordoned", cache) is None
    assert run(NodeReady(), make_pod(), "down", cache) == ("node(s) were not ready",)
    daemon = make_pod(tolerations=[toleration("node.kubernetes.io/not-ready", "Exists", effect="NoExecute")])
    assert run(NodeReady(), daemon, "down", cache) is None


# ---------------------------------------------------------------- inter-pod affinity


def pod_term(labels: dict[str, str], key: str) -> core_pb2.PodAffinityTerm:
    term = core_pb2.PodAffinityTerm(topology_key=key)
    term.label_selector.CopyFrom(meta_pb2.LabelSelector(match_labels=labels))
    return term


def anti(labels: dict[str, str], key: str = "kubernetes.io/hostname") -> core_pb2.Affinity:
    affinity = core_pb2.Affinity()
    affinity.pod_anti_affinity.required_during_scheduling_ignored_during_execution.append(
        pod_term(labels, key)
    )
    return affinity


def near(labels: dict[str, str], key: str = "zone") -> core_pb2.Affinity:
    affinity = core_pb2.Affinity()
    affinity.pod_affinity.required_during_scheduling_ignored_during_execution.append(pod_term(labels, key))
    return affinity


def zones() -> list[core_pb2.Node]:
    return [
        make_node("a1", labels={"zone": "a"}),
        make_node("a2", labels={"zone": "a"}),
        make_node("b1", labels={"zone": "b"}),
    ]


def test_anti_affinity_by_hostname_and_zone() -> None:
    cache = cluster(zones(), [make_pod("web-0", labels={"app": "web"}, node="a1")])
    pod = make_pod(labels={"app": "web"}, affinity=anti({"app": "web"}))
    assert run(InterPodAffinity(), pod, "a1", cache) == ("node(s) didn't match pod anti-affinity rules",)
    assert run(InterPodAffinity(), pod, "a2", cache) is None
    by_zone = make_pod(labels={"app": "web"}, affinity=anti({"app": "web"}, "zone"))
    assert run(InterPodAffinity(), by_zone, "a2", cache) is not None
    assert run(InterPodAffinity(), by_zone, "b1", cache) is None


def test_existing_pods_anti_affinity_is_symmetric() -> None:
    guard = make_pod("guard", labels={"app": "db"}, node="a1", affinity=anti({"app": "web"}))
    cache = cluster(zones(), [guard])
    pod = make_pod(labels={"app": "web"})
    assert run(InterPodAffinity(), pod, "a1", cache) == (
        "node(s) didn't satisfy existing pods anti-affinity rules",
    )
    assert run(InterPodAffinity(), pod, "a2", cache) is None


def test_pod_affinity_by_zone_and_the_first_pod_of_a_group() -> None:
    cache = cluster(zones(), [make_pod("cache-0", labels={"app": "cache"}, node="b1")])
    pod = make_pod(affinity=near({"app": "cache"}))
    assert run(InterPodAffinity(), pod, "a1", cache) == ("node(s) didn't match pod affinity rules",)
    assert run(InterPodAffinity(), pod, "b1", cache) is None
    # No pod matches yet, but the pod matches its own term: it may start the group anywhere.
    first = make_pod(labels={"app": "solo"}, affinity=near({"app": "solo"}))
    assert run(InterPodAffinity(), first, "a1", cache) is None
    lonely = make_pod(labels={"app": "x"}, affinity=near({"app": "solo"}))
    assert run(InterPodAffinity(), lonely, "a1", cache) is not None


def test_anti_affinity_other_namespace_does_not_count() -> None:
    cache = cluster(zones(), [make_pod("web-0", namespace="other", labels={"app": "web"}, node="a1")])
    pod = make_pod(labels={"app": "web"}, affinity=anti({"app": "web"}))
    assert run(InterPodAffinity(), pod, "a1", cache) is None


# ---------------------------------------------------------------- policy predicates


def test_check_node_label_presence() -> None:
    cache = cluster([make_node("a", labels={"retiring": "yes"}), make_node("b")])
    absent = CheckNodeLabelPresence({"labels": ["retiring"], "presence": False})
    assert run(absent, make_pod(), "a", cache) == ("node(s) didn't have the requested labels",)
    assert run(absent, make_pod(), "b", cache) is None
    present = CheckNodeLabelPresence({"labels": ["retiring"], "presence": True})
    assert run(present, make_pod(), "a", cache) is None


def test_check_service_affinity_follows_the_first_pod() -> None:
    from services.machinery import labels as selectors

    cache = cluster(zones(), [make_pod("web-0", labels={"app": "web"}, node="b1")])
    cache.services["Service/default/web"] = ("default", selectors.from_set({"app": "web"}))
    flt = CheckServiceAffinity({"labels": ["zone"]})
    pod = make_pod(labels={"app": "web"})
    assert run(flt, pod, "a1", cache) == ("node(s) didn't match service affinity",)
    assert run(flt, pod, "b1", cache) is None
    pinned = make_pod(labels={"app": "web"}, node_selector={"zone": "a"})
    assert run(flt, pinned, "a1", cache) is None


# ---------------------------------------------------------------- volumes


def claim_pod(claim: str, **kwargs) -> core_pb2.Pod:
    volume = core_pb2.Volume(name="data")
    volume.persistent_volume_claim.claim_name = claim
    return make_pod(volumes=[volume], **kwargs)


def add_volume(cache, name: str, zone: str | None, modes=("ReadWriteOnce",), bound: bool = True) -> None:
    pvc = core_pb2.PersistentVolumeClaim()
    pvc.metadata.name, pvc.metadata.namespace = name, "default"
    pvc.spec.access_modes.extend(modes)
    if bound:
        pvc.spec.volume_name = f"pv-{name}"
        pv = core_pb2.PersistentVolume()
        pv.metadata.name = f"pv-{name}"
        if zone:
            term = pv.spec.node_affinity.required.node_selector_terms.add()
            term.match_expressions.add(key="zone", operator="In", values=[zone])
        cache.pvs[pv.metadata.name] = pv
    cache.pvcs[("default", name)] = pvc


def test_volume_node_affinity_and_unbound_claims() -> None:
    cache = cluster(zones())
    add_volume(cache, "data", "b")
    assert run(VolumeNodeAffinity(), claim_pod("data"), "a1", cache) == (
        "node(s) had volume node affinity conflict",
    )
    assert run(VolumeNodeAffinity(), claim_pod("data"), "b1", cache) is None
    add_volume(cache, "pending", None, bound=False)
    fw = framework(cache)
    with pytest.raises(FitError) as error:
        fw.schedule(info(claim_pod("pending")))
    assert (
        error.value.message() == "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    )
    with pytest.raises(FitError) as error:
        fw.schedule(info(claim_pod("missing")))
    assert 'persistentvolumeclaim "missing" not found' in error.value.message()


def test_read_write_once_pod_claim_is_exclusive() -> None:
    cache = cluster(zones())
    add_volume(cache, "solo", None, modes=("ReadWriteOncePod",))
    add_volume(cache, "shared", None)
    cache.add_pod(info(claim_pod("solo", name="holder", node="a1")))
    cache.add_pod(info(claim_pod("shared", name="sharer", node="a1")))
    assert run(DiskConflict(), claim_pod("solo"), "a2", cache) is not None
    assert run(DiskConflict(), claim_pod("shared"), "a2", cache) is None


# ---------------------------------------------------------------- the summary


def test_summary_message_is_kubernetes() -> None:
    nodes = [make_node(f"small{i}", cpu="1") for i in range(3)]
    nodes += [make_node(f"other{i}", cpu="8", labels={"disk": "hdd"}) for i in range(2)]
    fw = framework(cluster(nodes))
    with pytest.raises(FitError) as error:
        fw.schedule(info(make_pod(cpu="2", node_selector={"disk": "ssd"})))
    # Nodes failing the selector stop there; the small ones that match nothing... all 5 fail
    # the selector first (Kubernetes' order: NodeAffinity before NodeResourcesFit).
    assert error.value.message() == (
        "0/5 nodes are available: 5 node(s) didn't match Pod's node affinity/selector."
    )
    nodes = [make_node(f"small{i}", cpu="1", labels={"disk": "ssd"}) for i in range(3)]
    nodes += [make_node(f"other{i}", cpu="8", labels={"disk": "hdd"}) for i in range(2)]
    fw = framework(cluster(nodes))
    with pytest.raises(FitError) as error:
        fw.schedule(info(make_pod(cpu="2", node_selector={"disk": "ssd"})))
    assert error.value.message() == (
        "0/5 nodes are available: 3 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector."
    )
