import pytest

from pinnace.api.apps.v1 import apps_pb2
from pinnace.api.core.v1 import core_pb2
from services.cli.errors import CLIError
from services.cli.printers import human_duration, name_of, render_table
from services.cli.resources import parse_refs, resolve, resolve_types


@pytest.mark.parametrize(
    "token",
    [
        "deployments",
        "deployment",
        "deploy",
        "Deployment",
        "deployments.apps",
        "deployment.apps",
        "deployments.v1.apps",
    ],
)
def test_resolve_forms(token: str) -> None:
    assert resolve(token).kind == "Deployment"


@pytest.mark.parametrize("token", ["pods", "pod", "po", "Pods"])
def test_resolve_core(token: str) -> None:
    assert resolve(token).kind == "Pod"


@pytest.mark.parametrize("token", ["x", "pods.apps", "deployments.batch", "", "bindings", "scales"])
def test_resolve_unknown(token: str) -> None:
    with pytest.raises(CLIError, match=f'the server doesn\'t have a resource type "{token}"'):
        resolve(token)


def test_parse_refs_forms() -> None:
    assert [(k.kind, n) for k, n in parse_refs(["po", "a", "b"])] == [("Pod", "a"), ("Pod", "b")]
    assert [(k.kind, n) for k, n in parse_refs(["po,svc"])] == [("Pod", ""), ("Service", "")]
    assert [(k.kind, n) for k, n in parse_refs(["pod/a", "svc/b"])] == [("Pod", "a"), ("Service", "b")]
    assert [(k.kind, n) for k, n in parse_refs(["po,svc", "x"])] == [("Pod", "x"), ("Service", "x")]


def test_parse_refs_all_category() -> None:
    kinds = [k.plural for k in resolve_types("all")]
    assert kinds[0] == "pods" and "deployments" in kinds and "configmaps" not in kinds


def test_parse_refs_errors() -> None:
    with pytest.raises(CLIError, match="no need to specify a resource type"):
        parse_refs(["pods", "pod/a"])
    with pytest.raises(CLIError, match="no name was specified"):
        parse_refs(["pods"], require_names=True)
    with pytest.raises(CLIError, match="must specify the type"):
        parse_refs([])
    with pytest.raises(CLIError, match='resource type "nope"'):
        parse_refs(["nope/a"])


def test_name_form() -> None:
    pod = core_pb2.Pod()
    pod.metadata.name = "web"
    deploy = apps_pb2.Deployment()
    deploy.metadata.name = "web"
    assert name_of(pod) == "pod/web"
    assert name_of(deploy) == "deployment.apps/web"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (5, "5s"),
        (119, "119s"),
        (182, "3m2s"),
        (240, "4m"),
        (900, "15m"),
        (4 * 3600 + 300, "4h5m"),
        (4 * 3600, "4h"),
        (10 * 3600, "10h"),
        (2 * 86400 + 3 * 3600, "2d3h"),
        (30 * 86400, "30d"),
        (3 * 365 * 86400 + 10 * 86400, "3y10d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_render_table_like_tabwriter() -> None:
    text = render_table([["NAME", "READY", "AGE"], ["a", "1/1", "5s"], ["longer-name", "0/1", "10m"]])
    assert text.splitlines() == [
        "NAME          READY   AGE",
        "a             1/1     5s",
        "longer-name   0/1     10m",
    ]
