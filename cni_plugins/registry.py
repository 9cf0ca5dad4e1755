"""Plugin names and how to run one, by name, in this process.

The thin client, the daemon and IPAM delegation all resolve plugins here, and only import a
plugin's module (pyroute2, iptc) when that plugin actually runs.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping

from cni_plugins.skel import Output, Plugin, dispatch

# Plugin key -> module holding a module-level PLUGIN object.
PLUGINS: dict[str, str] = {
    "bridge": "cni_plugins.bridge",
    "host-local": "cni_plugins.host_local",
    "loopback": "cni_plugins.loopback",
}
EXECUTABLE_PREFIX = "pinnace-"


def load(name: str) -> Plugin:
    """The plugin object for `name` (a key of PLUGINS)."""
    module = importlib.import_module(PLUGINS[name])
    plugin: Plugin = module.PLUGIN
    return plugin


def run(name: str, env: Mapping[str, str], stdin: bytes) -> Output:
    """Run plugin `name` on one request, exactly as its executable would."""
    return dispatch(load(name), env, stdin)


def run_main(name: str) -> int:
    """Be plugin `name` as a process: os.environ and stdin in, stdout/stderr and exit code out."""
    stdin = sys.stdin.buffer.read()
    out = run(name, dict(os.environ), stdin)
    sys.stdout.buffer.write(out.stdout)
    sys.stdout.buffer.flush()
    if out.stderr:
        sys.stderr.buffer.write(out.stderr)
        sys.stderr.buffer.flush()
    return out.code
