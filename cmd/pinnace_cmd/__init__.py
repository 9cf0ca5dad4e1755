"""Thin entry points of every pinnace program; the logic lives in services/, runtime_shims/ and cni_plugins/."""
