"""A pod as the scheduler needs it: requests, ports, selectors and affinity terms parsed once
when the pod enters the cache or the queue, so the per-node loop touches only plain Python
values and never a protobuf message."""

from __future__ import annotations

from dataclasses import dataclass

from pinnace.api.core.v1 import core_pb2
from pinnace.api.meta.v1 import meta_pb2
from services.machinery import labels
from services.scheduler.resources import Resources, pod_requests, requests_cpu_and_memory

_NODE_OPERATORS = {
    "In": labels.Operator.IN,
    "NotIn": labels.Operator.NOT_IN,
    "Exists": labels.Operator.EXISTS,
    "DoesNotExist": labels.Operator.DOES_NOT_EXIST,
    "Gt": labels.Operator.GREATER_THAN,
    "Lt": labels.Operator.LESS_THAN,
}
WILDCARD_IP = "0.0.0.0"


def selector_or_nothing(message: meta_pb2.LabelSelector | None) -> labels.Selector:
    try:
        return labels.from_label_selector(message)
    except labels.SelectorError:
        return labels.NOTHING


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """One term of a node selector: its label requirements and metadata.name field requirements,
    all of which must hold. A term with neither matches no node (as in Kubernetes)."""

    expressions: tuple[labels.Requirement, ...]
    fields: tuple[labels.Requirement, ...]

    def matches(self, node_labels: dict[str, str], node_name: str) -> bool:
        if not self.expressions and not self.fields:
            return False
        if not all(r.matches(node_labels) for r in self.expressions):
            return False
        return all(r.matches({"metadata.name": node_name}) for r in self.fields)


def _requirement(req: core_pb2.NodeSelectorRequirement) -> labels.Requirement | None:
    operator = _NODE_OPERATORS.get(req.operator)
    if operator is None:
        return None
    if operator in (labels.Operator.GREATER_THAN, labels.Operator.LESS_THAN):
        if len(req.values) != 1:
            return None
        try:
            int(req.values[0])
        except ValueError:
            return None
    return labels.Requirement(req.key, operator, tuple(req.values))


def node_selector_term(term: core_pb2.NodeSelectorTerm) -> NodeSelectorTerm:
    """An unparseable requirement makes the whole term match nothing (Kubernetes' behaviour)."""
    expressions = [_requirement(r) for r in term.match_expressions]
    fields = [_requirement(r) for r in term.match_fields if r.key == "metadata.name"]
    if None in expressions or None in fields or len(fields) != len(term.match_fields):
        return NodeSelectorTerm((labels.Requirement("", labels.Operator.IN, ()),), ())
    return NodeSelectorTerm(tuple(e for e in expressions if e), tuple(f for f in fields if f))


def node_selector_terms(selector: core_pb2.NodeSelector) -> tuple[NodeSelectorTerm, ...]:
    return tuple(node_selector_term(t) for t in selector.node_selector_terms)


def terms_match(terms: tuple[NodeSelectorTerm, ...], node_labels: dict[str, str], node_name: str) -> bool:
    """Terms are ORed; an empty list matches nothing."""
    return any(t.matches(node_labels, node_name) for t in terms)


@dataclass(frozen=True, slots=True)
class AffinityTerm:
    """A pod (anti-)affinity term: pods matching `selector` in `namespaces` (empty and
    all_namespaces false: the owning pod's namespace), counted per `topology_key` domain."""

    selector: labels.Selector
    namespaces: frozenset[str]
    namespace_selector: labels.Selector | None
    topology_key: str
    weight: int = 0

    def matches_pod(self, pod: PodInfo, namespace_labels: dict[str, dict[str, str]]) -> bool:
        if pod.namespace not in self.namespaces and not (
            self.namespace_selector is not None
            and self.namespace_selector.matches(namespace_labels.get(pod.namespace, {}))
        ):
            return False
        return self.selector.matches(pod.labels)


def affinity_term(term: core_pb2.PodAffinityTerm, namespace: str, weight: int = 0) -> AffinityTerm:
    namespaces = frozenset(term.namespaces)
    ns_selector = (
        selector_or_nothing(term.namespace_selector) if term.HasField("namespace_selector") else None
    )
    if not namespaces and ns_selector is None:
        namespaces = frozenset([namespace])
    selector = selector_or_nothing(term.label_selector if term.HasField("label_selector") else None)
    return AffinityTerm(selector, namespaces, ns_selector, term.topology_key, weight)


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str
    operator: str
    value: str
    effect: str

    def tolerates(self, key: str, value: str, effect: str) -> bool:
        if self.effect and self.effect != effect:
            return False
        if self.operator == "Exists":
            return not self.key or self.key == key
        return self.key == key and self.value == value


def image_name(image: str) -> str:
    """Kubernetes' normalisation for ImageLocality: an untagged, undigested image means :latest."""
    last = image.rsplit("/", 1)[-1]
    return image if ":" in last or "@" in image else f"{image}:latest"


@dataclass(eq=False, slots=True)
class PodInfo:
    pod: core_pb2.Pod
    key: str
    uid: str
    namespace: str
    name: str
    labels: dict[str, str]
    node_name: str
    scheduler_name: str
    priority: int
    creation: float
    terminating: bool
    request: Resources
    non_zero_cpu: int
    non_zero_memory: int
    host_ports: tuple[tuple[str, str, int], ...]
    node_selector: dict[str, str]
    required_node_terms: tuple[NodeSelectorTerm, ...] | None
    preferred_node_terms: tuple[tuple[int, NodeSelectorTerm], ...]
    tolerations: tuple[Toleration, ...]
    required_affinity: tuple[AffinityTerm, ...]
    required_anti_affinity: tuple[AffinityTerm, ...]
    preferred_affinity: tuple[AffinityTerm, ...]
    preferred_anti_affinity: tuple[AffinityTerm, ...]
    images: tuple[str, ...]
    claims: tuple[str, ...]
    owner_uid: str
    preempt_never: bool
    start_time: float

    @property
    def has_affinity(self) -> bool:
        return bool(
            self.required_affinity
            or self.required_anti_affinity
            or self.preferred_affinity
            or self.preferred_anti_affinity
        )


def pod_key(pod: core_pb2.Pod) -> str:
    return f"{pod.metadata.namespace}/{pod.metadata.name}"


_NO_TERMS: tuple[AffinityTerm, ...] = ()


@dataclass(frozen=True, slots=True)
class _Affinity:
    required_node_terms: tuple[NodeSelectorTerm, ...] | None = None
    preferred_node_terms: tuple[tuple[int, NodeSelectorTerm], ...] = ()
    required_affinity: tuple[AffinityTerm, ...] = _NO_TERMS
    required_anti_affinity: tuple[AffinityTerm, ...] = _NO_TERMS
    preferred_affinity: tuple[AffinityTerm, ...] = _NO_TERMS
    preferred_anti_affinity: tuple[AffinityTerm, ...] = _NO_TERMS


_NO_AFFINITY = _Affinity()


def _affinity(affinity: core_pb2.Affinity, ns: str) -> _Affinity:
    node_aff = affinity.node_affinity
    pa, paa = affinity.pod_affinity, affinity.pod_anti_affinity
    return _Affinity(
        required_node_terms=(
            node_selector_terms(node_aff.required_during_scheduling_ignored_during_execution)
            if node_aff.HasField("required_during_scheduling_ignored_during_execution")
            else None
        ),
        preferred_node_terms=tuple(
            (p.weight, node_selector_term(p.preference))
            for p in node_aff.preferred_during_scheduling_ignored_during_execution
            if p.weight
        ),
        required_affinity=tuple(
            affinity_term(t, ns) for t in pa.required_during_scheduling_ignored_during_execution
        ),
        required_anti_affinity=tuple(
            affinity_term(t, ns) for t in paa.required_during_scheduling_ignored_during_execution
        ),
        preferred_affinity=tuple(
            affinity_term(w.pod_affinity_term, ns, w.weight)
            for w in pa.preferred_during_scheduling_ignored_during_execution
        ),
        preferred_anti_affinity=tuple(
            affinity_term(w.pod_affinity_term, ns, w.weight)
            for w in paa.preferred_during_scheduling_ignored_during_execution
        ),
    )


def pod_info(pod: core_pb2.Pod) -> PodInfo:
    """Parsed once per pod version; most pods have no affinity at all, and reading the empty
    affinity messages field by field would cost more than the rest of the pod."""
    spec, meta = pod.spec, pod.metadata
    request = pod_requests(spec)
    non_zero = request if requests_cpu_and_memory(spec) else pod_requests(spec, non_zero=True)
    containers = spec.containers
    ports = tuple(
        (p.host_ip or WILDCARD_IP, p.protocol or "TCP", p.host_port)
        for c in containers
        for p in c.ports
        if p.host_port > 0
    )
    ns = meta.namespace
    aff = _affinity(spec.affinity, ns) if spec.HasField("affinity") else _NO_AFFINITY
    owner = next((o.uid for o in meta.owner_references if o.controller), "")
    creation = meta.creation_timestamp
    status = pod.status
    return PodInfo(
        pod=pod,
        key=f"{ns}/{meta.name}",
        uid=meta.uid,
        namespace=ns,
        name=meta.name,
        labels=dict(meta.labels),
        node_name=spec.node_name,
        scheduler_name=spec.scheduler_name,
        priority=spec.priority if spec.HasField("priority") else 0,
        creation=creation.seconds + creation.nanos / 1e9,
        terminating=meta.HasField("deletion_timestamp"),
        request=request,
        non_zero_cpu=non_zero.milli_cpu,
        non_zero_memory=non_zero.memory,
        host_ports=ports,
        node_selector=dict(spec.node_selector),
        required_node_terms=aff.required_node_terms,
        preferred_node_terms=aff.preferred_node_terms,
        tolerations=tuple(Toleration(t.key, t.operator, t.value, t.effect) for t in spec.tolerations),
        required_affinity=aff.required_affinity,
        required_anti_affinity=aff.required_anti_affinity,
        preferred_affinity=aff.preferred_affinity,
        preferred_anti_affinity=aff.preferred_anti_affinity,
        images=tuple(image_name(c.image) for c in containers),
        claims=tuple(
            v.persistent_volume_claim.claim_name
            for v in spec.volumes
            if v.HasField("persistent_volume_claim")
        ),
        owner_uid=owner,
        preempt_never=spec.HasField("preemption_policy") and spec.preemption_policy == "Never",
        start_time=(
            status.start_time.seconds + status.start_time.nanos / 1e9
            if status.HasField("start_time")
            else 0.0
        ),
    )
