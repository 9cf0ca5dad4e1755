"""pinnace-cni-install: put the pinnace CNI plugin executables into a CNI bin directory."""

import sys

from cni_plugins.install import main as install_main


def main() -> None:
    sys.exit(install_main())
