"""The kubelet: makes a machine a node, runs the pods bound to it through the CRI runtime,
keeps them healthy and reports their status (docs/kubelet.md)."""
