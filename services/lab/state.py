"""What a lab is made of, kept in STATE_ROOT/NAME/state.json so that `pinnace lab down` can
remove everything from the file alone, even after the process that built the lab crashed."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_STATE_ROOT = Path("/var/lib/pinnace/labs")
LAN_PREFIX = "192.168.56"
MASTER_IP = f"{LAN_PREFIX}.10"
CLIENT_IP = f"{LAN_PREFIX}.100"
LAN_HOST = "lan"
_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")


class LabError(RuntimeError):
    """The lab could not be built, reached or torn down; the message says what and where."""


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise LabError(f"lab name {name!r} must be 1-12 lowercase letters or digits, starting with a letter")
    return name


def netns_name(lab: str, host: str) -> str:
    return f"pl-{lab}-{host}"


@dataclass
class Host:
    name: str  # master, node1, node2, ..., client
    role: str  # master, node or client
    ip: str
    netns: str
    node_name: str = ""  # the Node's name in the cluster ("" when the host runs no node)

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"


@dataclass
class Process:
    name: str  # server, apiserver, scheduler, controller-manager, agent-node1, ...
    host: str
    argv: list[str]
    log: str
    pid: int = 0
    start_time: int = 0  # /proc/PID/stat field 22: tells our process from a reused pid


@dataclass
class LabState:
    name: str
    root: str
    nodes: int
    split_control_plane: bool = False
    master_agent: bool = False
    hosts: list[Host] = field(default_factory=list)
    processes: dict[str, Process] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return Path(self.root) / self.name

    @property
    def file(self) -> Path:
        return self.directory / "state.json"

    def save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.file.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=1))
        temporary.replace(self.file)

    @classmethod
    def load(cls, name: str, root: Path = DEFAULT_STATE_ROOT) -> LabState:
        path = root / check_name(name) / "state.json"
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise LabError(f"no lab {name!r} under {root} (no {path})") from None
        except (OSError, ValueError) as exc:
            raise LabError(f"cannot read {path}: {exc}") from None
        return cls(
            name=raw["name"],
            root=raw["root"],
            nodes=raw["nodes"],
            split_control_plane=raw.get("split_control_plane", False),
            master_agent=raw.get("master_agent", False),
            hosts=[Host(**h) for h in raw.get("hosts", [])],
            processes={k: Process(**p) for k, p in raw.get("processes", {}).items()},
        )


def process_start_time(pid: int) -> int:
    """The kernel's start time of `pid` (0 when there is no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):  # exited, not reaped yet: gone as far as the lab is concerned
        return 0
    return int(fields[19])


def is_ours(process: Process) -> bool:
    """Alive and the very process the lab started (not another one that got its pid)."""
    return process.pid > 0 and process_start_time(process.pid) == process.start_time != 0
