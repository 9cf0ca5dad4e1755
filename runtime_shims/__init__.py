"""CRI runtime shims: gRPC servers speaking runtime.v1 for a container engine."""
