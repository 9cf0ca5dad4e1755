"""Secrets encrypted at rest: unreadable in the database file, readable through the API, and
rotatable by putting a new key first and re-encrypting."""

from __future__ import annotations

import base64
import os
import sqlite3
from pathlib import Path

import pytest

from services.apiserver.encryption import EncryptionError, Transformer, load_config
from services.apiserver.server import APIServer, Config
from services.client.client import Client
from tests.unit.apiserver.helpers import manifest


def write_config(path: Path, *providers: str) -> Path:
    path.write_text(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
        "- resources: [secrets]\n  providers:\n" + "".join(providers)
    )
    return path


def aesgcm(*names: str) -> str:
    keys = "".join(
        f"      - name: {n}\n        secret: {base64.b64encode(os.urandom(32)).decode()}\n" for n in names
    )
    return f"  - aesgcm:\n      keys:\n{keys}"


def raw_values(db: Path) -> list[bytes]:
    with sqlite3.connect(db) as conn:
        return [
            row[0]
            for row in conn.execute(
                "SELECT value FROM kine WHERE name LIKE '/registry/secrets/%' AND deleted = 0 AND id IN "
                "(SELECT MAX(id) FROM kine GROUP BY name)"
            )
        ]


async def serve(tmp_path: Path, config_file: Path, reencrypt: bool = False) -> tuple[APIServer, Client]:
    server = APIServer(
        Config(
            listen="127.0.0.1:0",
            sqlite_path=str(tmp_path / "state.db"),
            encryption_provider_config=str(config_file),
            reencrypt=reencrypt,
        )
    )
    await server.start()
    return server, Client.connect(f"127.0.0.1:{server.port}")


async def test_secrets_are_sealed_and_rotatable(tmp_path: Path) -> None:
    first = write_config(tmp_path / "enc1.yaml", aesgcm("key1"), "  - identity: {}\n")
    server, client = await serve(tmp_path, first)
    await client.create(
        manifest(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\n"
            "stringData: {password: hunter2-very-secret}\n"
        )
    )
    assert (await client.get("secrets", "db", "default")).data["password"] == b"hunter2-very-secret"
    await client.close()
    await server.stop(grace=0)
    [stored] = raw_values(tmp_path / "state.db")
    assert stored.startswith(b"k8s:enc:aesgcm:v1:key1:")
    assert b"hunter2" not in stored

    key1 = first.read_text().split("  - aesgcm:")[1].split("  - identity")[0]
    rotated = write_config(tmp_path / "enc2.yaml", aesgcm("key2"), "  - aesgcm:" + key1)
    server, client = await serve(tmp_path, rotated, reencrypt=True)
    assert (await client.get("secrets", "db", "default")).data["password"] == b"hunter2-very-secret"
    await client.close()
    await server.stop(grace=0)
    [stored] = raw_values(tmp_path / "state.db")
    assert stored.startswith(b"k8s:enc:aesgcm:v1:key2:")


def test_tampered_or_unknown_key_values_fail() -> None:
    transformer = Transformer(keys=[("k", os.urandom(32))], identity_allowed=False)
    sealed = transformer.seal(b"payload", "/registry/secrets/ns/a")
    assert transformer.open(sealed, "/registry/secrets/ns/a") == b"payload"
    with pytest.raises(EncryptionError, match="authentication"):
        transformer.open(sealed, "/registry/secrets/ns/b")  # moved to another key: refused
    with pytest.raises(EncryptionError, match="authentication"):
        transformer.open(sealed[:-1] + bytes([sealed[-1] ^ 1]), "/registry/secrets/ns/a")
    with pytest.raises(EncryptionError, match="no key named"):
        Transformer(keys=[("other", os.urandom(32))]).open(sealed, "/registry/secrets/ns/a")
    with pytest.raises(EncryptionError, match="not encrypted"):
        transformer.open(b"plaintext", "/registry/secrets/ns/a")


def test_bad_configuration(tmp_path: Path) -> None:
    bad_key = tmp_path / "bad.yaml"
    bad_key.write_text(
        "kind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n"
        "  - aesgcm:\n      keys:\n      - {name: k, secret: c2hvcnQ=}\n"
    )
    with pytest.raises(EncryptionError, match="16, 24 or 32 bytes"):
        load_config(bad_key)
    plain = tmp_path / "plain.yaml"
    plain.write_text("kind: Something\n")
    with pytest.raises(EncryptionError, match="not an EncryptionConfiguration"):
        load_config(plain)
