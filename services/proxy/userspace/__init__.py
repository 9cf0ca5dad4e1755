"""userspace mode: a proxy socket per service port, reached through KUBE-PORTALS-* redirects."""
