"""Kubernetes' AtomicWriter: the files of a secret, configMap or downwardAPI volume change
all at once. The payload lives in a timestamped directory `..<time>`; `..data` is a symlink
to the current one, swapped with rename(2); every visible name is a symlink through `..data`.
A reader therefore sees the old set or the new set, never a mix, and updates (the object
changed) reach running containers without a restart."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

DATA_LINK = "..data"


def _current(target: Path) -> dict[str, tuple[bytes, int]]:
    data = target / DATA_LINK
    if not data.is_symlink():
        return {}
    base = data.resolve()
    found: dict[str, tuple[bytes, int]] = {}
    for path in base.rglob("*"):
        if path.is_file():
            found[str(path.relative_to(base))] = (path.read_bytes(), path.stat().st_mode & 0o7777)
    return found


def _check_path(rel: str) -> None:
    parts = Path(rel).parts
    if not rel or rel.startswith("/") or ".." in parts or (parts and parts[0].startswith("..")):
        raise ValueError(
            f'invalid path "{rel}": must be relative and may not contain ".." or start with ".."'
        )


def write_atomic(target: Path, payload: dict[str, tuple[bytes, int]]) -> bool:
    """Make `target` show exactly `payload` ({relative path: (content, mode)}); True if changed."""
    for rel in payload:
        _check_path(rel)
    target.mkdir(parents=True, exist_ok=True)
    if _current(target) == payload and (target / DATA_LINK).is_symlink():
        return False
    stamp = time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime())
    new_dir = Path(tempfile.mkdtemp(prefix=f"..{stamp}.", dir=target))
    new_dir.chmod(0o755)
    for rel, (content, mode) in payload.items():
        path = new_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    old_data = (target / DATA_LINK).resolve() if (target / DATA_LINK).is_symlink() else None
    tmp_link = target / "..data_tmp"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    tmp_link.symlink_to(new_dir.name)
    tmp_link.rename(target / DATA_LINK)
    visible = {Path(rel).parts[0] for rel in payload}
    for name in visible:
        link = target / name
        if not link.is_symlink():
            link.symlink_to(f"{DATA_LINK}/{name}")
    for entry in target.iterdir():
        if entry.name.startswith("..") or entry.name in visible:
            continue
        if entry.is_symlink():
            entry.unlink()
    if old_data is not None and old_data != new_dir and old_data.parent == target:
        shutil.rmtree(old_data, ignore_errors=True)
    for entry in target.iterdir():
        if (
            entry.name.startswith("..")
            and entry.name not in (DATA_LINK, new_dir.name)
            and not entry.is_symlink()
        ):
            shutil.rmtree(entry, ignore_errors=True)
    return True
