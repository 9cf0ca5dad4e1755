"""`run`: the Pod kubectl's run command generates (one container named after the pod,
labelled run=NAME unless --labels says otherwise), with kubectl's checks of its input."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pinnace.api.core.v1 import core_pb2
from services.cli.errors import EXIT_USAGE, CLIError
from services.machinery import formats

RESTART_POLICIES = ("Always", "OnFailure", "Never")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")

# distribution/reference's ReferenceRegexp: [domain[:port]/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)


def check_image(image: str) -> None:
    """The image reference checks kubectl run makes before sending anything."""
    if not _REFERENCE.match(image):
        raise CLIError(f'Invalid image name "{image}": invalid reference format')


def parse_labels(text: str) -> dict[str, str]:
    """`a=b,c=d` (kubectl's ParseLabels), keys and values checked as the apiserver would."""
    result: dict[str, str] = {}
    for spec in text.split(","):
        parts = spec.split("=")
        if len(parts) != 2 or not parts[0]:
            raise CLIError(f"unexpected label spec: {spec}")
        key, value = parts
        problems = formats.qualified_name(key) + formats.label_value(value)
        if problems:
            raise CLIError(f"invalid label spec: {spec}: {'; '.join(problems)}")
        result[key] = value
    return result


def parse_env(specs: list[str]) -> list[core_pb2.EnvVar]:
    env = []
    for spec in specs:
        name, equals, value = spec.partition("=")
        if not equals or not name or formats.env_var_name(name):
            raise CLIError(f"invalid env: {spec}")
        env.append(core_pb2.EnvVar(name=name, value=value))
    return env


def parse_annotations(specs: list[str]) -> dict[str, str]:
    result = {}
    for spec in specs:
        key, equals, value = spec.partition("=")
        if not equals or not key:
            raise CLIError(f"invalid annotation format: {spec}")
        result[key] = value
    return result


@dataclass
class RunSpec:
    name: str
    image: str
    port: str = ""
    env: list[str] = field(default_factory=list)
    labels: str = ""
    annotations: list[str] = field(default_factory=list)
    restart: str = "Always"
    image_pull_policy: str = ""
    command: bool = False
    args: list[str] = field(default_factory=list)
    namespace: str = "default"


def build_pod(spec: RunSpec) -> core_pb2.Pod:
    """Check the input, then build the pod (nothing is sent here)."""
    if not spec.name:
        raise CLIError("NAME is required for run", EXIT_USAGE)
    if not spec.image:
        raise CLIError("--image is required", EXIT_USAGE)
    check_image(spec.image)
    if spec.restart not in RESTART_POLICIES:
        raise CLIError(f"invalid restart policy: {spec.restart}", EXIT_USAGE)
    if spec.image_pull_policy and spec.image_pull_policy not in PULL_POLICIES:
        raise CLIError(
            f"invalid image pull policy: {spec.image_pull_policy}; must be one of {', '.join(PULL_POLICIES)}",
            EXIT_USAGE,
        )
    if spec.command and not spec.args:
        raise CLIError("--command requires the command after --", EXIT_USAGE)
    pod = core_pb2.Pod()
    pod.metadata.name = spec.name
    pod.metadata.namespace = spec.namespace
    pod.metadata.labels.update(parse_labels(spec.labels) if spec.labels else {"run": spec.name})
    pod.metadata.annotations.update(parse_annotations(spec.annotations))
    container = pod.spec.containers.add(name=spec.name, image=spec.image)
    if spec.image_pull_policy:
        container.image_pull_policy = spec.image_pull_policy
    if spec.args:
        (container.command if spec.command else container.args).extend(spec.args)
    if spec.port:
        try:
            port = int(spec.port)
        except ValueError:
            raise CLIError(f'invalid port "{spec.port}": must be a number') from None
        if formats.port_number(port):
            raise CLIError(f"invalid port {port}: {formats.port_number(port)[0]}")
        container.ports.add(container_port=port)
    container.env.extend(parse_env(spec.env))
    pod.spec.dns_policy = "ClusterFirst"
    pod.spec.restart_policy = spec.restart
    return pod
