"""Scores (Kubernetes' priorities): how good is this feasible node for the pod, 0..100. The
framework adds them up with the configured weights and breaks ties at random."""
