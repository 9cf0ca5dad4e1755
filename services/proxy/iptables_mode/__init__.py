"""iptables mode: KUBE-SERVICES/KUBE-SVC-*/KUBE-SEP-* applied with iptables-restore."""
