"""The thin plugin executable: hand the call to the plugin daemon, or run it here.

An interpreter that must import pyroute2 and python-iptables spends ~0.35 s before doing
anything; a CNI runtime pays that on every ADD. This module imports only built-in modules
(`sys`, `posix`, `_socket`), so an executable run as `python -I -S` starts in ~10 ms, sends
the call (environment, stdin and an fd on its own network namespace) to the long-lived
daemon over a unix socket, and relays the answer. When no daemon listens it runs the plugin
in-process, so the executables remain plain CNI plugins.

Wire format (one request per connection):
  request  = MAGIC NUL name NUL env-item NUL ... NUL NUL stdin   (SCM_RIGHTS: netns fd)
  response = exit code (4 bytes, big endian) stdout length (4 bytes) stdout stderr
"""

from __future__ import annotations

import _socket
import posix
import sys

MAGIC = b"PCNI1"
DEFAULT_SOCKET = "/run/pinnace/cni.sock"
SOCKET_ENV = b"PINNACE_CNI_SOCKET"  # overrides the socket path; empty disables the daemon
TIMEOUT = 120.0  # seconds a daemon worker may take before the runtime hears "try again later"
_ERR_TRY_AGAIN_LATER = 11


def encode_request(name: str, env: dict[bytes, bytes], stdin: bytes) -> bytes:
    """The request bytes (without the fd, which travels as ancillary data)."""
    items = [MAGIC, name.encode()] + [k + b"=" + v for k, v in env.items() if k and b"\0" not in k + v]
    return b"\0".join(items) + b"\0\0" + stdin


def decode_request(data: bytes) -> tuple[str, dict[str, str], bytes]:
    """(plugin name, environment, stdin) from request bytes; ValueError when malformed."""
    end = data.find(b"\0\0")
    if end < 0:
        raise ValueError("request has no header terminator")
    fields = data[:end].split(b"\0")
    if len(fields) < 2 or fields[0] != MAGIC:
        raise ValueError("not a pinnace CNI request")
    env: dict[str, str] = {}
    for item in fields[2:]:
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
    return fields[1].decode(), env, data[end + 2 :]


def encode_response(code: int, stdout: bytes, stderr: bytes) -> bytes:
    return code.to_bytes(4, "big") + len(stdout).to_bytes(4, "big") + stdout + stderr


def decode_response(data: bytes) -> tuple[int, bytes, bytes]:
    """(exit code, stdout, stderr); ValueError when the daemon hung up early."""
    if len(data) < 8:
        raise ValueError("short response from the CNI daemon")
    size = int.from_bytes(data[4:8], "big")
    if len(data) < 8 + size:
        raise ValueError("truncated response from the CNI daemon")
    return int.from_bytes(data[:4], "big"), data[8 : 8 + size], data[8 + size :]


def _read_fd(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = posix.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[posix.write(fd, view) :]


def _json_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _via_daemon(name: str, path: str, env: dict[bytes, bytes]) -> int | None:
    """Run the call in the daemon; None when there is no daemon to talk to."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    try:
        payload = encode_request(name, env, _read_fd(0))
        nsfd = posix.open("/proc/thread-self/ns/net", posix.O_RDONLY)
        sock.settimeout(TIMEOUT)
        ancillary = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, nsfd.to_bytes(4, sys.byteorder))]
        sent = sock.sendmsg([payload], ancillary)
        posix.close(nsfd)
        if sent < len(payload):
            sock.sendall(payload[sent:])
        sock.shutdown(_socket.SHUT_WR)
        chunks: list[bytes] = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        code, out, err = decode_response(b"".join(chunks))
    except (OSError, ValueError) as exc:
        msg = _json_str(f"CNI daemon at {path} failed: {exc}")
        _write_fd(1, ('{"code": %d, "msg": %s}\n' % (_ERR_TRY_AGAIN_LATER, msg)).encode())  # noqa: UP031
        return 1
    finally:
        sock.close()
    _write_fd(1, out)
    if err:
        _write_fd(2, err)
    return code


def _in_process(name: str, full_python: str = "") -> int:
    """Be the plugin here: load site-packages (skipped by -S) and the real plugin code.

    When the thin client runs on a different (faster-starting) interpreter than the one
    pyroute2 is installed for, re-exec that one; stdin is still unread at this point.
    """
    if full_python and full_python != sys.executable:
        root = __file__.rsplit("/", 2)[0]
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); from cni_plugins.thin import _in_process; "
            "sys.exit(_in_process(sys.argv[2]))"
        )
        posix.execv(full_python, [full_python, "-I", "-c", code, root, name])
    if "site" not in sys.modules:
        import site  # noqa: PLC0415 - deliberately late: only the fallback pays for it

        site.main()
    from cni_plugins.registry import run_main  # noqa: PLC0415

    return run_main(name)


def main(name: str, socket_path: str = DEFAULT_SOCKET, full_python: str = "") -> int:
    """Entry point of every plugin executable; returns the exit code.

    `full_python` is the interpreter that has pyroute2 and python-iptables, when it is not
    the one running this client.
    """
    env = dict(posix.environ)
    override = env.get(SOCKET_ENV)
    path = override.decode() if override is not None else socket_path
    if path:
        code = _via_daemon(name, path, env)
        if code is not None:
            return code
    return _in_process(name, full_python)
