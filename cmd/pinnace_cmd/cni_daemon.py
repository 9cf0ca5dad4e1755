"""pinnace-cni-daemon: the long-lived process that runs CNI plugin calls for the thin clients."""

import sys

from cni_plugins.daemon import main as daemon_main


def main() -> None:
    sys.exit(daemon_main())
