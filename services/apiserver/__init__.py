"""The apiserver: the only door to cluster state (gRPC API, admission, storage, watch cache)."""
