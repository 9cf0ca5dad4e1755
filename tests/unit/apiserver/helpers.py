from __future__ import annotations

from typing import Any

from services.machinery import codec


def pod(
    name: str,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    node: str = "",
    image: str = "pinnace/busybox:1.0",
) -> Any:
    obj: Any = codec.from_yaml(f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  containers: [{{name: c, image: "{image}"}}]
""")
    obj.metadata.labels.update(labels or {})
    obj.spec.node_name = node
    return obj


def manifest(text: str) -> Any:
    return codec.from_yaml(text)
