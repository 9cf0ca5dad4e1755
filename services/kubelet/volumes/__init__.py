"""Pod volumes under the kubelet's root dir: pods/<uid>/volumes/<plugin>/<name>, plugin named
as Kubernetes names it (kubernetes.io~empty-dir, ~secret, ~configmap, ~downward-api). hostPath
and persistentVolumeClaim volumes are bind-mounted from where they are; nothing is copied."""
