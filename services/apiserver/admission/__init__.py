"""Admission: the pluggable stages every write passes after defaulting and validation.

Mutating plugins may change the object (allocate a ClusterIP); validating plugins may only
refuse it (a terminating namespace). A plugin that takes a resource rolls it back when a later
stage or the storage write fails, so a refused request changes nothing.
"""
