"""The CRI shim for Docker (the role dockershim and cri-dockerd play)."""
