"""The scheduler: binds every unscheduled pod to the best node (filter, score, assume, bind).

Modules: podinfo/nodeinfo (parsed views of the API objects), cache (node infos and assumed
pods), queue (active, back-off and unschedulable pods), filters/ and scores/ (the plugins),
equivalence (per-class memo of filter results and scores), framework (one scheduling cycle),
preemption, binder, config, metrics, and scheduler (informers and the loop that ties them).
"""
