"""pinnace-bridge: the CNI bridge plugin executable (thin client of the pinnace CNI daemon)."""

import sys

from cni_plugins.thin import main as thin_main


def main() -> None:
    sys.exit(thin_main("bridge"))
