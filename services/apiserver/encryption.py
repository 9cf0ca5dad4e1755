"""Encryption at rest: values of chosen resources (Secrets) are sealed with AES-GCM before they
reach storage, in the format and with the configuration file Kubernetes uses
(EncryptionConfiguration), so a copy of the database or of etcd leaks no secret.

The first provider of a resource encrypts; every provider can decrypt, chosen by the value's
prefix (`k8s:enc:aesgcm:v1:<key name>:`), which is what makes key rotation work: put the new
key first, keep the old one, re-encrypt, then drop the old key.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_PREFIX = b"k8s:enc:aesgcm:v1:"
_NONCE_BYTES = 12


class EncryptionError(ValueError):
    """The configuration is invalid, or a stored value cannot be decrypted with any known key."""


@dataclass
class Transformer:
    """How one resource's values are sealed: AES-GCM keys in order, and whether plaintext is allowed."""

    keys: list[tuple[str, bytes]] = field(default_factory=list)
    identity_first: bool = False
    identity_allowed: bool = True

    def seal(self, data: bytes, context: str) -> bytes:
        if self.identity_first or not self.keys:
            return data
        name, key = self.keys[0]
        nonce = os.urandom(_NONCE_BYTES)
        return _PREFIX + name.encode() + b":" + nonce + AESGCM(key).encrypt(nonce, data, context.encode())

    def open(self, data: bytes, context: str) -> bytes:
        if not data.startswith(_PREFIX):
            if not self.identity_allowed:
                raise EncryptionError(
                    "stored value is not encrypted and the identity provider is not configured"
                )
            return data
        name, sep, rest = data[len(_PREFIX) :].partition(b":")
        key = dict(self.keys).get(name.decode(errors="replace"))
        if not sep or key is None:
            raise EncryptionError(f"no key named {name.decode(errors='replace')!r} to decrypt a stored value")
        try:
            return AESGCM(key).decrypt(rest[:_NONCE_BYTES], rest[_NONCE_BYTES:], context.encode())
        except InvalidTag:
            raise EncryptionError("stored value failed authentication (wrong key or tampered)") from None


def load_config(path: Path) -> dict[str, Transformer]:
    """Transformers by resource plural from an EncryptionConfiguration file."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise EncryptionError(f"cannot read encryption configuration {path}: {exc}") from None
    if not isinstance(document, dict) or document.get("kind") != "EncryptionConfiguration":
        raise EncryptionError(f"{path} is not an EncryptionConfiguration")
    transformers: dict[str, Transformer] = {}
    for number, entry in enumerate(document.get("resources") or []):
        transformer = Transformer(identity_allowed=False)
        providers = entry.get("providers") or []
        if not providers:
            raise EncryptionError(f"resources[{number}].providers: at least one provider is required")
        for index, provider in enumerate(providers):
            if "identity" in provider:
                transformer.identity_allowed = True
                transformer.identity_first = transformer.identity_first or index == 0
            elif "aesgcm" in provider:
                for key in provider["aesgcm"].get("keys") or []:
                    transformer.keys.append(
                        (str(key["name"]), _key_bytes(key.get("secret", ""), key["name"]))
                    )
            else:
                raise EncryptionError(
                    f"resources[{number}].providers[{index}]: only aesgcm and identity are supported"
                )
        for resource in entry.get("resources") or []:
            transformers[str(resource).split(".")[0]] = transformer
    return transformers


def _key_bytes(secret: str, name: str) -> bytes:
    try:
        key = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise EncryptionError(f"key {name!r}: secret is not base64") from None
    if len(key) not in (16, 24, 32):
        raise EncryptionError(f"key {name!r}: AES keys are 16, 24 or 32 bytes, got {len(key)}")
    return key
