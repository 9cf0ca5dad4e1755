"""A StatefulSet's containers mount its volumeClaimTemplates by name (the controller adds the
volumes to each pod), while a mount of a name that is neither a volume nor a claim stays an error."""

from __future__ import annotations

import pytest

from services.machinery.manifests import ManifestSourceError, Source, load

STATEFULSET = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: pinnace/busybox:1.0
        volumeMounts:
        - {name: MOUNT, mountPath: /data}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Mi}}
"""


def test_mounts_may_name_claim_templates() -> None:
    (decoded,) = load(Source("sts.yaml", STATEFULSET.replace("MOUNT", "data")))
    # Validation looked at the pods' view; the stored template is left as written.
    assert list(decoded.obj.spec.template.spec.volumes) == []  # type: ignore[attr-defined]


def test_mount_of_an_unknown_name_is_still_refused() -> None:
    with pytest.raises(ManifestSourceError) as caught:
        load(Source("sts.yaml", STATEFULSET.replace("MOUNT", "cache")))
    assert 'spec.template.spec.containers[0].volumeMounts[0].name: Not found: "cache"' in str(caught.value)
