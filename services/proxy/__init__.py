"""kube-proxy: makes Services' virtual IPs and node ports work on a node (docs/proxy.md)."""
