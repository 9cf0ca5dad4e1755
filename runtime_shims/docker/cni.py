"""A small CNI runtime (the part of libcni the shim needs): load the first valid network
configuration from the conf dir, execute its plugins per the CNI spec (environment contract,
config on stdin, result or error JSON on stdout, ADD in order with prevResult chaining, DEL in
reverse), and keep the final ADD result in libcni's cache layout so that DEL gets its
prevResult and the pod IP survives a shim restart.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.machinery.logs import get_logger

log = get_logger(__name__)

IFNAME = "eth0"
CONFIG_SUFFIXES = (".conflist", ".conf", ".json")
SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
PLUGIN_TIMEOUT_SECONDS = 60.0


class CNIError(Exception):
    """A plugin failed, or no usable network configuration exists."""

    def __init__(self, message: str, code: int = 0, details: str = "") -> None:
        super().__init__(message if not details else f"{message}: {details}")
        self.code = code
        self.msg = message
        self.details = details


@dataclass(frozen=True)
class NetworkList:
    name: str
    cni_version: str
    plugins: tuple[dict[str, Any], ...]
    source: Path
    raw: bytes
    disable_check: bool = False


@dataclass(frozen=True)
class Attachment:
    """Who a network attachment is for: the sandbox container, its netns and the pod."""

    container_id: str
    netns: str
    pod_namespace: str = ""
    pod_name: str = ""
    pod_uid: str = ""
    ifname: str = IFNAME
    capabilities: dict[str, Any] = field(default_factory=dict)

    def cni_args(self) -> list[tuple[str, str]]:
        return [
            ("IgnoreUnknown", "1"),
            ("K8S_POD_NAMESPACE", self.pod_namespace),
            ("K8S_POD_NAME", self.pod_name),
            ("K8S_POD_INFRA_CONTAINER_ID", self.container_id),
            ("K8S_POD_UID", self.pod_uid),
        ]


def load_network(conf_dir: Path) -> NetworkList:
    """The first valid configuration in lexical order (what dockershim and libcni do)."""
    try:
        candidates = sorted(p for p in conf_dir.iterdir() if p.suffix in CONFIG_SUFFIXES and p.is_file())
    except OSError as exc:
        raise CNIError(f"no CNI configuration in {conf_dir}", details=str(exc)) from exc
    problems: list[str] = []
    for path in candidates:
        try:
            return parse_network(path.read_bytes(), path)
        except (CNIError, OSError, ValueError) as exc:
            problems.append(f"{path.name}: {exc}")
    detail = "; ".join(problems) if problems else "no .conflist, .conf or .json file"
    raise CNIError(f"no valid CNI configuration in {conf_dir}", details=detail)


def parse_network(raw: bytes, source: Path) -> NetworkList:
    doc = json.loads(raw)
    if not isinstance(doc, dict):
        raise CNIError("configuration is not a JSON object")
    if "plugins" in doc:
        plugins = doc["plugins"]
        if not isinstance(plugins, list) or not plugins:
            raise CNIError("'plugins' must be a non-empty list")
    elif "type" in doc:
        plugins = [doc]
    else:
        raise CNIError("neither 'plugins' nor 'type' present")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise CNIError("'name' is required")
    version = _pick_version(doc)
    for plugin in plugins:
        if not isinstance(plugin, dict) or not isinstance(plugin.get("type"), str) or "/" in plugin["type"]:
            raise CNIError(f"plugin entry without a valid 'type': {plugin!r}")
    return NetworkList(
        name=name,
        cni_version=version,
        plugins=tuple(plugins),
        source=source,
        raw=raw,
        disable_check=bool(doc.get("disableCheck", False)),
    )


def _pick_version(doc: dict[str, Any]) -> str:
    versions = doc.get("cniVersions")
    if isinstance(versions, list):
        usable = [v for v in versions if v in SUPPORTED_VERSIONS]
        if usable:
            return str(max(usable, key=lambda v: tuple(int(x) for x in v.split("."))))
    version = doc.get("cniVersion", "")
    if version not in SUPPORTED_VERSIONS:
        raise CNIError(f"unsupported cniVersion {version!r}")
    return str(version)


class CNIRuntime:
    def __init__(self, conf_dir: Path, bin_dirs: tuple[Path, ...], cache_dir: Path) -> None:
        self.conf_dir = conf_dir
        self.bin_dirs = bin_dirs
        self.cache_dir = cache_dir
        self.last_add_seconds = 0.0

    def status(self) -> tuple[bool, str, str]:
        """NetworkReady: a loadable configuration whose every plugin binary exists."""
        try:
            network = load_network(self.conf_dir)
            for plugin in network.plugins:
                self.find_plugin(plugin["type"])
                ipam = plugin.get("ipam")
                if isinstance(ipam, dict) and ipam.get("type"):
                    self.find_plugin(ipam["type"])
        except CNIError as exc:
            return (
                False,
                "NetworkPluginNotReady",
                f"network plugin is not ready: cni config uninitialized: {exc}",
            )
        return True, "", ""

    def find_plugin(self, plugin_type: str) -> Path:
        for directory in self.bin_dirs:
            candidate = directory / plugin_type
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
        raise CNIError(f"failed to find plugin {plugin_type!r} in path {[str(d) for d in self.bin_dirs]}")

    # ---------------------------------------------------------------- ADD / DEL

    def add(self, attachment: Attachment) -> dict[str, Any]:
        network = load_network(self.conf_dir)
        started = time.perf_counter()
        result: dict[str, Any] | None = None
        executed: list[dict[str, Any]] = []
        try:
            for plugin in network.plugins:
                executed.append(plugin)
                config = self._request_config(network, plugin, attachment, result)
                result = self._exec(plugin["type"], "ADD", config, attachment)
        except CNIError:
            self._undo_partial_add(network, executed, attachment, result)
            raise
        final = result or {"cniVersion": network.cni_version}
        self._write_cache(network, attachment, final)
        self.last_add_seconds = time.perf_counter() - started
        return final

    def _undo_partial_add(
        self,
        network: NetworkList,
        executed: list[dict[str, Any]],
        attachment: Attachment,
        prev: dict[str, Any] | None,
    ) -> None:
        """A failed ADD: DEL every plugin that ran (the failed one too), best effort, so that
        no veth, lease or rule outlives the failure even when a plugin's DEL fails as well."""
        for plugin in reversed(executed):
            config = self._request_config(
                network, plugin, attachment, prev if _has_prev_result(network) else None
            )
            try:
                self._exec(plugin["type"], "DEL", config, attachment)
            except CNIError as exc:
                log.warning("cleanup after failed ADD", plugin=plugin["type"], error=str(exc))

    def delete(self, attachment: Attachment) -> None:
        """Undo ADD (plugins in reverse, prevResult from the cache); succeeds when already done."""
        cached = self._read_cache(attachment)
        if cached is not None:
            try:
                network = parse_network(base64.b64decode(cached["config"]), Path("cache"))
            except (CNIError, ValueError, KeyError):
                network = load_network(self.conf_dir)
            prev = cached.get("result")
            capabilities = cached.get("capabilityArgs") or attachment.capabilities
            attachment = Attachment(**{**attachment.__dict__, "capabilities": capabilities})
        else:
            network = load_network(self.conf_dir)
            prev = None
        for plugin in reversed(network.plugins):
            config = self._request_config(
                network, plugin, attachment, prev if _has_prev_result(network) else None
            )
            self._exec(plugin["type"], "DEL", config, attachment)
        self._remove_cache(network.name, attachment)

    def cached_result(self, container_id: str, ifname: str = IFNAME) -> dict[str, Any] | None:
        results = self.cache_dir / "results"
        try:
            names = [p for p in results.iterdir() if p.name.endswith(f"-{container_id}-{ifname}")]
        except OSError:
            return None
        for path in names:
            with contextlib.suppress(OSError, ValueError):
                doc = json.loads(path.read_text())
                result = doc.get("result")
                if isinstance(result, dict):
                    return result
        return None

    def remove_cached(self, container_id: str, ifname: str = IFNAME) -> None:
        results = self.cache_dir / "results"
        with contextlib.suppress(OSError):
            for path in results.iterdir():
                if path.name.endswith(f"-{container_id}-{ifname}"):
                    path.unlink(missing_ok=True)

    # ---------------------------------------------------------------- internals

    def _request_config(
        self,
        network: NetworkList,
        plugin: dict[str, Any],
        attachment: Attachment,
        prev: dict[str, Any] | None,
    ) -> dict[str, Any]:
        config = {k: v for k, v in plugin.items() if k != "capabilities"}
        config["cniVersion"] = network.cni_version
        config["name"] = network.name
        wanted = plugin.get("capabilities") or {}
        runtime_config = {k: v for k, v in attachment.capabilities.items() if wanted.get(k)}
        if runtime_config:
            config["runtimeConfig"] = runtime_config
        if prev is not None:
            config["prevResult"] = prev
        return config

    def _exec(
        self, plugin_type: str, command: str, config: dict[str, Any], attachment: Attachment
    ) -> dict[str, Any]:
        binary = self.find_plugin(plugin_type)
        env = {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": attachment.container_id,
            "CNI_NETNS": attachment.netns,
            "CNI_IFNAME": attachment.ifname,
            "CNI_ARGS": ";".join(f"{k}={v}" for k, v in attachment.cni_args()),
            "CNI_PATH": os.pathsep.join(str(d) for d in self.bin_dirs),
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        }
        try:
            proc = subprocess.run(
                [str(binary)],
                input=json.dumps(config).encode(),
                env=env,
                capture_output=True,
                timeout=PLUGIN_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise CNIError(
                f"plugin {plugin_type} {command} timed out after {PLUGIN_TIMEOUT_SECONDS:.0f}s"
            ) from exc
        if proc.returncode != 0:
            raise _plugin_error(plugin_type, command, proc.stdout, proc.stderr)
        if command != "ADD":
            return {}
        try:
            result = json.loads(proc.stdout)
        except ValueError as exc:
            raise CNIError(
                f"plugin {plugin_type} ADD printed no JSON result", details=proc.stdout[:200].decode()
            ) from exc
        if not isinstance(result, dict):
            raise CNIError(f"plugin {plugin_type} ADD result is not an object")
        return result

    def _cache_path(self, network_name: str, attachment: Attachment) -> Path:
        return self.cache_dir / "results" / f"{network_name}-{attachment.container_id}-{attachment.ifname}"

    def _write_cache(self, network: NetworkList, attachment: Attachment, result: dict[str, Any]) -> None:
        doc = {
            "kind": "cniCacheV1",
            "containerId": attachment.container_id,
            "config": base64.b64encode(network.raw).decode(),
            "ifName": attachment.ifname,
            "networkName": network.name,
            "netns": attachment.netns,
            "cniArgs": [list(pair) for pair in attachment.cni_args()],
            "capabilityArgs": attachment.capabilities,
            "result": result,
        }
        path = self._cache_path(network.name, attachment)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(path)

    def _read_cache(self, attachment: Attachment) -> dict[str, Any] | None:
        results = self.cache_dir / "results"
        with contextlib.suppress(OSError, ValueError):
            for path in results.iterdir():
                if path.name.endswith(f"-{attachment.container_id}-{attachment.ifname}"):
                    doc = json.loads(path.read_text())
                    if isinstance(doc, dict):
                        return doc
        return None

    def _remove_cache(self, network_name: str, attachment: Attachment) -> None:
        self._cache_path(network_name, attachment).unlink(missing_ok=True)
        self.remove_cached(attachment.container_id, attachment.ifname)


def _has_prev_result(network: NetworkList) -> bool:
    """prevResult on DEL exists since CNI 0.4.0."""
    return tuple(int(x) for x in network.cni_version.split(".")) >= (0, 4, 0)


def _plugin_error(plugin_type: str, command: str, stdout: bytes, stderr: bytes) -> CNIError:
    try:
        doc = json.loads(stdout)
        if isinstance(doc, dict) and "msg" in doc:
            return CNIError(
                f"plugin {plugin_type} {command} failed (code {doc.get('code', 0)}): {doc['msg']}",
                code=int(doc.get("code", 0)),
                details=str(doc.get("details", "")),
            )
    except ValueError:
        pass
    text = (stdout or stderr).decode(errors="replace").strip()
    return CNIError(f"plugin {plugin_type} {command} failed", details=text[:500])


def pod_ips(result: dict[str, Any]) -> list[str]:
    """Addresses of the container interface (IPv4 first), without prefix length."""
    interfaces = result.get("interfaces") or []
    ips: list[str] = []
    for entry in result.get("ips") or []:
        index = entry.get("interface")
        if index is not None and 0 <= index < len(interfaces) and not interfaces[index].get("sandbox"):
            continue
        address = str(entry.get("address", "")).split("/")[0]
        if address:
            ips.append(address)
    return sorted(ips, key=lambda ip: ":" in ip)


def port_mapping_capability(mappings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `portMappings` capability argument (entries without a host port are skipped)."""
    out = []
    for m in mappings:
        if int(m.get("host_port", 0)) <= 0:
            continue
        entry: dict[str, Any] = {
            "hostPort": int(m["host_port"]),
            "containerPort": int(m.get("container_port", 0)),
            "protocol": str(m.get("protocol", "TCP")).lower(),
        }
        if m.get("host_ip"):
            entry["hostIP"] = m["host_ip"]
        out.append(entry)
    return out
