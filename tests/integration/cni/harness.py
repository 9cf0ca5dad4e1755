"""A small CNI runtime that follows the spec to the letter, to drive any plugin (ours or Debian's).

It knows nothing about pinnace: it finds plugins by `type` on its bin dirs, passes the CNI_*
environment and the per-plugin request config on stdin (cniVersion and name inserted,
runtimeConfig from capabilities, prevResult chained, capabilities removed), reads the result
or error JSON from stdout and caches the final ADD result for DEL and CHECK, like libcni.
Plugins run inside `host_netns` (via nsenter) so they never see the root namespace.
"""

from __future__ import annotations

import copy
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPEC_ORDER = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


class PluginError(Exception):
    """A plugin answered with the spec's error JSON (or crashed)."""

    def __init__(self, plugin: str, rc: int, error: dict[str, Any], stderr: str = "") -> None:
        super().__init__(f"{plugin}: exit {rc}: {error}")
        self.plugin = plugin
        self.rc = rc
        self.error = error
        self.code = error.get("code")
        self.msg = str(error.get("msg", ""))
        self.stderr = stderr


@dataclass
class Attachment:
    container_id: str
    netns: str
    ifname: str = "eth0"
    cni_args: list[tuple[str, str]] = field(default_factory=list)
    capability_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class CniRuntime:
    """Runs conflists; `host_netns` is a netns path the plugins execute in (None: here)."""

    bin_dirs: list[str]
    host_netns: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    cache: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    timeout: float = 120.0

    def find(self, plugin_type: str) -> str:
        for d in self.bin_dirs:
            p = Path(d) / plugin_type
            if p.is_file():
                return str(p)
        raise FileNotFoundError(f"plugin {plugin_type!r} not found in {self.bin_dirs}")

    def env(self, command: str, att: Attachment | None) -> dict[str, str]:
        env = {
            "CNI_COMMAND": command,
            "CNI_PATH": ":".join(self.bin_dirs),
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        }
        if att is not None:
            env["CNI_CONTAINERID"] = att.container_id
            env["CNI_IFNAME"] = att.ifname
            if att.netns:
                env["CNI_NETNS"] = att.netns
            if att.cni_args:
                env["CNI_ARGS"] = ";".join(f"{k}={v}" for k, v in att.cni_args)
        env.update(self.extra_env)
        return env

    def exec_raw(
        self, plugin_type: str, env: dict[str, str], stdin: bytes
    ) -> subprocess.CompletedProcess[bytes]:
        """Run one plugin binary exactly as the spec says: env in, stdin in, stdout out."""
        argv = [self.find(plugin_type)]
        if self.host_netns:
            argv = ["nsenter", f"--net={self.host_netns}", "--", *argv]
        return subprocess.run(
            argv, input=stdin, env=env, capture_output=True, timeout=self.timeout, check=False
        )

    def exec_plugin(
        self, plugin_type: str, env: dict[str, str], conf: dict[str, Any]
    ) -> dict[str, Any] | None:
        proc = self.exec_raw(plugin_type, env, json.dumps(conf).encode())
        out = proc.stdout.strip()
        if proc.returncode != 0:
            try:
                error = json.loads(out)
            except ValueError:
                error = {"code": None, "msg": out.decode(errors="replace")}
            raise PluginError(plugin_type, proc.returncode, error, proc.stderr.decode(errors="replace"))
        return json.loads(out) if out else None

    @staticmethod
    def version_of(conflist: dict[str, Any]) -> str:
        versions = conflist.get("cniVersions")
        if versions:
            return max((v for v in versions if v in SPEC_ORDER), key=SPEC_ORDER.index)
        return str(conflist["cniVersion"])

    def request(
        self,
        conflist: dict[str, Any],
        plugin: dict[str, Any],
        att: Attachment | None,
        prev: dict[str, Any] | None,
    ) -> dict[str, Any]:
        conf = copy.deepcopy(plugin)
        conf["cniVersion"] = self.version_of(conflist)
        conf["name"] = conflist["name"]
        caps = conf.pop("capabilities", None) or {}
        if att is not None:
            runtime = {k: v for k, v in att.capability_args.items() if caps.get(k)}
            if runtime:
                conf["runtimeConfig"] = runtime
        if prev is not None:
            conf["prevResult"] = prev
        return conf

    def _key(self, conflist: dict[str, Any], att: Attachment) -> tuple[str, str, str]:
        return (conflist["name"], att.container_id, att.ifname)

    def add(self, conflist: dict[str, Any], att: Attachment) -> dict[str, Any]:
        prev: dict[str, Any] | None = None
        for plugin in conflist["plugins"]:
            conf = self.request(conflist, plugin, att, prev)
            prev = self.exec_plugin(plugin["type"], self.env("ADD", att), conf)
        assert prev is not None
        self.cache[self._key(conflist, att)] = prev
        return prev

    def check(self, conflist: dict[str, Any], att: Attachment) -> None:
        prev = self.cache.get(self._key(conflist, att))
        for plugin in conflist["plugins"]:
            self.exec_plugin(
                plugin["type"], self.env("CHECK", att), self.request(conflist, plugin, att, prev)
            )

    def delete(self, conflist: dict[str, Any], att: Attachment) -> None:
        prev = self.cache.get(self._key(conflist, att))
        for plugin in reversed(conflist["plugins"]):
            self.exec_plugin(plugin["type"], self.env("DEL", att), self.request(conflist, plugin, att, prev))
        self.cache.pop(self._key(conflist, att), None)

    def gc(self, conflist: dict[str, Any], valid: list[Attachment]) -> list[PluginError]:
        """GC every plugin (continuing on error), with both spellings of the valid list."""
        errors: list[PluginError] = []
        attachments = [{"containerID": a.container_id, "ifname": a.ifname} for a in valid]
        for plugin in conflist["plugins"]:
            conf = self.request(conflist, plugin, None, None)
            conf["cni.dev/valid-attachments"] = attachments
            conf["cni.dev/attachments"] = attachments
            try:
                self.exec_plugin(plugin["type"], self.env("GC", None), conf)
            except PluginError as exc:
                errors.append(exc)
        return errors

    def status(self, conflist: dict[str, Any]) -> None:
        for plugin in conflist["plugins"]:
            self.exec_plugin(
                plugin["type"], self.env("STATUS", None), self.request(conflist, plugin, None, None)
            )

    def version(self, plugin_type: str, cni_version: str = "1.1.0") -> dict[str, Any]:
        out = self.exec_plugin(plugin_type, {"CNI_COMMAND": "VERSION"}, {"cniVersion": cni_version})
        assert out is not None
        return out
