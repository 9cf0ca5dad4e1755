"""The lab: a whole cluster in network namespaces on one machine (docs/lab.md)."""

from services.lab.lab import Lab, destroy
from services.lab.state import DEFAULT_STATE_ROOT, Host, LabError

__all__ = ["DEFAULT_STATE_ROOT", "Host", "Lab", "LabError", "destroy"]
