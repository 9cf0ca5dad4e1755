"""Every example manifest loads and validates; every invalid one fails with exactly its errors."""

import re
from pathlib import Path

import pytest

from services.machinery.manifests import ManifestSourceError, Source, load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VALID = sorted(p for p in EXAMPLES.rglob("*.yaml") if "invalid" not in p.parts)
INVALID = sorted((EXAMPLES / "invalid").glob("*.yaml"))


def test_the_notes_examples_are_all_present() -> None:
    names = {p.stem for p in VALID}
    for expected in (
        "redis-master-controller",
        "redis-master-service",
        "redis-slave-controller",
        "redis-slave-service",
        "frontend-controller",
        "frontend-service",
        "rc-demo-v0.1",
        "rc-demo-v0.2",
        "emptydir-pod",
        "hostpath-pod",
        "secret",
        "secret-pod",
        "development",
        "php-apache",
        "frontend-deployment",
        "daemonset",
        "job",
    ):
        assert expected in names


@pytest.mark.parametrize("path", VALID, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_example_loads(path: Path) -> None:
    decoded = load(Source(str(path), path.read_text()))
    assert decoded


def test_frontend_service_is_nodeport_30001() -> None:
    path = EXAMPLES / "guestbook" / "frontend-service.yaml"
    (svc,) = load(Source(str(path), path.read_text()))
    assert svc.obj.spec.type == "NodePort"  # type: ignore[attr-defined]
    assert svc.obj.spec.ports[0].node_port == 30001  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_example_fails_with_exactly_its_errors(path: Path) -> None:
    text = path.read_text()
    expected = [m.group(1) for m in re.finditer(r"^# error: (.*)$", text, re.MULTILINE)]
    assert expected, f"{path.name} must list its expected errors in '# error:' lines"
    with pytest.raises(ManifestSourceError) as caught:
        load(Source(path.name, text))
    cause = caught.value
    message = str(cause)
    assert message.startswith(f'error validating "{path.name}": ')
    for error in expected:
        assert error in message, f"{error!r} not in {message!r}"
    # Exactly these errors: a multi-error message lists them "[a; b]", a single one alone.
    body = message.split(" is invalid: ", 1)[1]
    listed = body[1:-1].split("; ") if body.startswith("[") else [body]
    assert sorted(listed) == sorted(expected)
