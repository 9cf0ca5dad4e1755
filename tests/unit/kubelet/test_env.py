from __future__ import annotations

import pytest

from pinnace.api.core.v1 import core_pb2
from services.kubelet.env import EnvError, build_env, expand, service_variables, visible_services
from tests.unit.kubelet.fakes import Objects, pod


def _service(name: str, namespace: str, ip: str, *ports: tuple[str, int, str]) -> core_pb2.Service:
    svc = core_pb2.Service()
    svc.metadata.name, svc.metadata.namespace = name, namespace
    svc.spec.cluster_ip = ip
    for port_name, port, proto in ports:
        svc.spec.ports.add(name=port_name, port=port, protocol=proto)
    return svc


def test_expand_follows_kubernetes_rules() -> None:
    values = {"A": "1", "B": "two"}.get
    assert expand("$(A)-$(B)", values) == "1-two"
    assert expand("$(MISSING)", values) == "$(MISSING)"
    assert expand("$$(A)", values) == "$(A)"
    assert expand("a$b$", values) == "a$b$"


def test_service_variables_docker_links_style() -> None:
    env = service_variables(
        [_service("redis-master", "ns", "10.96.0.5", ("", 6379, "TCP"), ("metrics", 9121, "TCP"))]
    )
    assert env["REDIS_MASTER_SERVICE_HOST"] == "10.96.0.5"
    assert env["REDIS_MASTER_SERVICE_PORT"] == "6379"
    assert env["REDIS_MASTER_SERVICE_PORT_METRICS"] == "9121"
    assert env["REDIS_MASTER_PORT"] == "tcp://10.96.0.5:6379"
    assert env["REDIS_MASTER_PORT_6379_TCP"] == "tcp://10.96.0.5:6379"
    assert env["REDIS_MASTER_PORT_6379_TCP_PROTO"] == "tcp"
    assert env["REDIS_MASTER_PORT_6379_TCP_PORT"] == "6379"
    assert env["REDIS_MASTER_PORT_6379_TCP_ADDR"] == "10.96.0.5"
    assert service_variables([_service("headless", "ns", "None", ("", 80, "TCP"))]) == {}


def test_visible_services_master_always_namespace_when_links_on() -> None:
    services = [
        _service("kubernetes", "default", "10.96.0.1", ("https", 443, "TCP")),
        _service("web", "ns", "10.96.0.9", ("", 80, "TCP")),
        _service("other", "elsewhere", "10.96.0.10", ("", 80, "TCP")),
    ]
    p = pod()
    assert {s.metadata.name for s in visible_services(p, services)} == {"kubernetes", "web"}
    p.spec.enable_service_links = False
    assert {s.metadata.name for s in visible_services(p, services)} == {"kubernetes"}


async def test_build_env_sources_and_order() -> None:
    secret = core_pb2.Secret(data={"password": b"pw", "user": b"admin"})
    cm = core_pb2.ConfigMap(data={"MODE": "fast", "LEVEL": "3"})
    objects = Objects(
        secrets={("ns", "creds"): secret},
        config_maps={("ns", "conf"): cm},
        service_list=[_service("web", "ns", "10.96.0.9", ("", 80, "TCP"))],
    )
    c = core_pb2.Container(name="c", image="x")
    c.env_from.add(prefix="CFG_").config_map_ref.name = "conf"
    c.env.add(name="WEB_SERVICE_HOST", value="overridden")
    c.env.add(name="PASSWORD").value_from.secret_key_ref.CopyFrom(
        core_pb2.SecretKeySelector(name="creds", key="password")
    )
    c.env.add(name="MODE").value_from.config_map_key_ref.CopyFrom(
        core_pb2.ConfigMapKeySelector(name="conf", key="MODE")
    )
    c.env.add(name="POD").value_from.field_ref.field_path = "metadata.name"
    c.env.add(name="IP").value_from.field_ref.field_path = "status.podIP"
    c.env.add(name="GREETING", value="hi $(POD) at $(IP)")
    c.env.add(name="MEM").value_from.resource_field_ref.resource = "limits.memory"
    p = pod("web-1", "ns", c)
    env = dict(await build_env(p, c, objects, pod_ip="10.244.1.5", allocatable={"memory": "1Gi", "cpu": "2"}))
    assert env["CFG_MODE"] == "fast" and env["CFG_LEVEL"] == "3"
    assert env["WEB_SERVICE_HOST"] == "overridden"
    assert env["PASSWORD"] == "pw" and env["MODE"] == "fast"
    assert env["GREETING"] == "hi web-1 at 10.244.1.5"
    assert env["MEM"] == str(1024**3)


async def test_build_env_missing_objects() -> None:
    c = core_pb2.Container(name="c", image="x")
    c.env.add(name="P").value_from.secret_key_ref.CopyFrom(core_pb2.SecretKeySelector(name="nope", key="k"))
    with pytest.raises(EnvError, match='secret "nope" not found'):
        await build_env(pod("p", "ns", c), c, Objects())
    c.env[0].value_from.secret_key_ref.optional = True
    assert dict(await build_env(pod("p", "ns", c), c, Objects())) == {}
    c2 = core_pb2.Container(name="c", image="x")
    c2.env_from.add().config_map_ref.name = "missing"
    with pytest.raises(EnvError, match='configmap "missing" not found'):
        await build_env(pod("p", "ns", c2), c2, Objects())
