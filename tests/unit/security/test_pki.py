import datetime as dt

import pytest
from cryptography import x509

from services.machinery import pki


def test_client_identity_and_chain() -> None:
    ca = pki.new_ca()
    node = pki.issue(ca, "system:node:n1", organizations=("system:nodes",))
    pki.verify_signed_by(ca.certificate, node.certificate)
    assert pki.identity_of(node.certificate) == ("system:node:n1", ("system:nodes",))


def test_serving_certificate_has_sans() -> None:
    ca = pki.new_ca()
    server = pki.issue(
        ca,
        "pinnace-apiserver",
        dns_names=("kubernetes", "localhost"),
        ip_addresses=("10.96.0.1", "127.0.0.1"),
        server=True,
    )
    sans = server.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kubernetes" in sans.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"10.96.0.1", "127.0.0.1"}


def test_foreign_and_expired_certificates_are_refused() -> None:
    ca, other = pki.new_ca(), pki.new_ca("other-ca")
    stranger = pki.issue(other, "mallory")
    with pytest.raises(ValueError, match="not issued by this CA"):
        pki.verify_signed_by(ca.certificate, stranger.certificate)
    same_name = pki.new_ca()  # same subject as `ca`, different key: a forgery
    forged = pki.issue(same_name, "mallory")
    with pytest.raises(ValueError, match="signature does not verify"):
        pki.verify_signed_by(ca.certificate, forged.certificate)
    old = pki.issue(
        ca, "old", validity=dt.timedelta(days=1), not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    )
    with pytest.raises(ValueError, match="expired"):
        pki.verify_signed_by(ca.certificate, old.certificate)


def test_write_and_read_keep_keys_private(tmp_path) -> None:
    ca = pki.new_ca()
    cert_path, key_path = ca.write(tmp_path, "ca")
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert pki.KeyPair.read(tmp_path, "ca") == ca
    assert cert_path.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
