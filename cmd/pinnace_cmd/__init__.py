"""Thin entry points of every pinnace program.

The logic lives in services/, runtime_shims/ and cni_plugins/.
"""
