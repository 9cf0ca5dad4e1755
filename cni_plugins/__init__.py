"""CNI plugin executables (bridge, host-local IPAM, loopback) built on pyroute2."""
