"""ImageService on Docker's image store: list, status (image unset when absent), pull with
registry credentials, idempotent remove (every tag of the image goes), filesystem usage."""

from __future__ import annotations

import base64
import contextlib
import os
import time
from typing import Any

import grpc
from docker import errors as docker_errors
from docker.utils import parse_repository_tag

from pinnace.cri.v1 import api_pb2 as cri
from runtime_shims.docker.backend import Backend
from runtime_shims.docker.errors import CRIError, from_docker, invalid


def normalise(reference: str) -> tuple[str, str]:
    """Repository and tag (or digest) of a reference; no tag means `latest`, as Docker pulls."""
    repository, tag = parse_repository_tag(reference)
    if not tag:
        tag = "latest"
    return repository, tag


def _user(config_user: str) -> tuple[cri.Int64Value | None, str]:
    user = (config_user or "").split(":", 1)[0]
    if not user:
        return None, ""
    if user.isdigit():
        return cri.Int64Value(value=int(user)), ""
    return None, user


def image_message(info: dict[str, Any], pinned: set[str]) -> cri.Image:
    image = cri.Image(
        id=info["Id"],
        repo_tags=[t for t in info.get("RepoTags") or [] if t != "<none>:<none>"],
        repo_digests=[d for d in info.get("RepoDigests") or [] if d != "<none>@<none>"],
        size=int(info.get("Size") or 0),
        pinned=info["Id"] in pinned,
    )
    config = info.get("Config") or {}
    uid, username = _user(config.get("User", ""))
    if uid is not None:
        image.uid.CopyFrom(uid)
    image.username = username
    image.spec.image = info["Id"]
    return image


class Images:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.api = backend.api

    def _pinned(self) -> set[str]:
        with contextlib.suppress(docker_errors.DockerException):
            return {self.api.inspect_image(self.backend.config.pause_image)["Id"]}
        return set()

    def list(self, flt: cri.ImageFilter | None) -> list[cri.Image]:
        pinned = self._pinned()
        reference = flt.image.image if flt is not None else ""
        if reference:
            info = self._inspect(reference)
            return [image_message(info, pinned)] if info is not None else []
        out = []
        for summary in self.api.images():
            info = {
                "Id": summary["Id"],
                "RepoTags": summary.get("RepoTags"),
                "RepoDigests": summary.get("RepoDigests"),
                "Size": summary.get("Size"),
            }
            out.append(image_message(info, pinned))
        return out

    def _inspect(self, reference: str) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = self.api.inspect_image(reference)
        except docker_errors.NotFound:
            return None
        except docker_errors.DockerException as exc:
            raise from_docker(exc, "image status") from exc
        return info

    def status(self, spec: cri.ImageSpec, verbose: bool) -> cri.ImageStatusResponse:
        if not spec.image:
            raise invalid("image.image: Required value")
        info = self._inspect(spec.image)
        if info is None:
            return cri.ImageStatusResponse()
        response = cri.ImageStatusResponse(image=image_message(info, self._pinned()))
        if verbose:
            response.info["info"] = f'{{"created":"{info.get("Created", "")}","os":"{info.get("Os", "")}"}}'
        return response

    def pull(self, spec: cri.ImageSpec, auth: cri.AuthConfig) -> str:
        if not spec.image:
            raise invalid("image.image: Required value")
        repository, tag = normalise(spec.image)
        auth_config = _auth_config(auth)
        try:
            for event in self.api.pull(
                repository, tag=tag, stream=True, decode=True, auth_config=auth_config
            ):
                if isinstance(event, dict) and event.get("error"):
                    raise _pull_error(spec.image, str(event["error"]))
            reference = f"{repository}@{tag}" if tag.startswith("sha256:") else f"{repository}:{tag}"
            return str(self.api.inspect_image(reference)["Id"])
        except docker_errors.APIError as exc:
            raise _pull_error(spec.image, str(exc.explanation or exc), exc.status_code) from exc
        except docker_errors.DockerException as exc:
            raise from_docker(exc, f"pull image {spec.image!r}") from exc

    def remove(self, spec: cri.ImageSpec) -> None:
        if not spec.image:
            raise invalid("image.image: Required value")
        info = self._inspect(spec.image)
        if info is None:
            return
        try:
            self.api.remove_image(info["Id"], force=True)
        except docker_errors.NotFound:
            return
        except docker_errors.DockerException as exc:
            raise from_docker(exc, f"remove image {spec.image!r}") from exc

    def fs_info(self) -> cri.ImageFsInfoResponse:
        root = self.api.info().get("DockerRootDir", "/var/lib/docker")
        df = self.api.df()
        now = time.time_ns()
        inodes = 0
        with contextlib.suppress(OSError):
            st = os.statvfs(root)
            inodes = st.f_files - st.f_ffree
        images = cri.FilesystemUsage(
            timestamp=now,
            fs_id=cri.FilesystemIdentifier(mountpoint=root),
            used_bytes=cri.UInt64Value(value=int(df.get("LayersSize") or 0)),
            inodes_used=cri.UInt64Value(value=inodes),
        )
        writable = sum(int(c.get("SizeRw") or 0) for c in df.get("Containers") or [])
        containers = cri.FilesystemUsage(
            timestamp=now,
            fs_id=cri.FilesystemIdentifier(mountpoint=root),
            used_bytes=cri.UInt64Value(value=writable),
            inodes_used=cri.UInt64Value(value=inodes),
        )
        return cri.ImageFsInfoResponse(image_filesystems=[images], container_filesystems=[containers])


def _auth_config(auth: cri.AuthConfig) -> dict[str, str] | None:
    username, password = auth.username, auth.password
    if auth.auth and not username:
        with contextlib.suppress(ValueError):
            username, _, password = base64.b64decode(auth.auth).decode().partition(":")
    config: dict[str, str] = {}
    if username:
        config["username"] = username
        config["password"] = password
    if auth.server_address:
        config["serveraddress"] = auth.server_address
    if auth.identity_token:
        config["identitytoken"] = auth.identity_token
    if auth.registry_token:
        config["registrytoken"] = auth.registry_token
    return config or None


def _pull_error(image: str, message: str, status: int | None = None) -> CRIError:
    lowered = message.lower()
    if status == 401 or "unauthorized" in lowered or "authentication required" in lowered:
        return CRIError(grpc.StatusCode.UNAUTHENTICATED, f"pull image {image!r}: {message}")
    if (
        status == 404
        or "not found" in lowered
        or "manifest unknown" in lowered
        or "does not exist" in lowered
    ):
        return CRIError(grpc.StatusCode.NOT_FOUND, f"pull image {image!r}: {message}")
    if status == 400 or "invalid reference" in lowered:
        return CRIError(grpc.StatusCode.INVALID_ARGUMENT, f"pull image {image!r}: {message}")
    return CRIError(grpc.StatusCode.UNAVAILABLE, f"pull image {image!r}: {message}")
