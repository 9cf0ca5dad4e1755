"""Filters (Kubernetes' predicates): can this pod run on this node? Each returns None when it
fits, or the reasons it does not, in Kubernetes' words, so the summary message matches."""
