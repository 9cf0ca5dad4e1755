"""pinnace-apiserver: the API server (also `pinnace apiserver`)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.apiserver.kubelet_client import DEFAULT_ADDRESS_TYPES
from services.apiserver.server import DEFAULT_ADMISSION_PLUGINS, Config, serve
from services.machinery import jwt
from services.machinery.logs import configure_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", default="127.0.0.1:6443", help="gRPC listen address (host:port)")
    parser.add_argument("--storage", choices=("sqlite", "etcd"), default="sqlite", help="storage backend")
    parser.add_argument("--sqlite-path", default="/var/lib/pinnace/state.db", help="SQLite database file")
    parser.add_argument(
        "--sqlite-synchronous",
        choices=("FULL", "NORMAL"),
        default="FULL",
        help="FULL survives power loss; NORMAL survives process crashes only",
    )
    parser.add_argument("--etcd-servers", default="", help="comma-separated etcd endpoints (host:port)")
    parser.add_argument("--etcd-prefix", default="", help="key prefix inside etcd")
    parser.add_argument("--etcd-cafile", default="", help="CA verifying the etcd members' certificates (PEM)")
    parser.add_argument("--etcd-certfile", default="", help="client certificate presented to etcd (PEM)")
    parser.add_argument("--etcd-keyfile", default="", help="key of --etcd-certfile (PEM)")
    parser.add_argument("--service-cluster-ip-range", default="10.96.0.0/12", help="service CIDR")
    parser.add_argument("--service-node-port-range", default="30000-32767", help="NodePort range (low-high)")
    parser.add_argument(
        "--advertise-address", default="127.0.0.1", help="address put in the `kubernetes` Endpoints"
    )
    parser.add_argument(
        "--metrics-listen", default="", help="Prometheus metrics address (host:port); off if empty"
    )
    parser.add_argument(
        "--history-seconds", type=float, default=300.0, help="watch history kept before compaction"
    )
    parser.add_argument("--event-ttl-seconds", type=float, default=3600.0, help="how long Events are kept")
    security = parser.add_argument_group("security (TLS is required unless --insecure)")
    security.add_argument(
        "--insecure",
        action="store_true",
        help="plaintext gRPC with authentication and authorisation off (development only)",
    )
    security.add_argument("--tls-cert-file", default="", help="serving certificate (PEM)")
    security.add_argument("--tls-private-key-file", default="", help="serving certificate's key (PEM)")
    security.add_argument(
        "--client-ca-file",
        default="",
        help="CA of client certificates: the main listener then requires one (CN=user, O=groups)",
    )
    security.add_argument(
        "--token-listen",
        default="",
        help="second TLS listener without client certificates, for bearer tokens (pods)",
    )
    security.add_argument(
        "--token-auth-file", default="", help='static tokens: CSV token,user,uid,"group1,group2"'
    )
    security.add_argument(
        "--service-account-key-file",
        default="",
        help="key verifying service-account tokens (PEM, public or private); "
        "default: --service-account-signing-key-file",
    )
    security.add_argument(
        "--service-account-signing-key-file",
        default="",
        help="private key signing TokenRequest tokens (serviceaccounts/token); unset: not served",
    )
    security.add_argument(
        "--service-account-issuer",
        default=jwt.DEFAULT_BOUND_ISSUER,
        help="`iss` of the tokens this apiserver issues",
    )
    security.add_argument(
        "--api-audiences",
        default="",
        help="comma list of audiences a token must name to be accepted; default: the issuer",
    )
    security.add_argument(
        "--authorization-mode",
        default="Node,RBAC",
        help="ordered modes: Node, RBAC, AlwaysAllow, AlwaysDeny (AlwaysAllow with --insecure)",
    )
    security.add_argument("--anonymous-auth", action="store_true", help="accept requests without credentials")
    security.add_argument(
        "--enable-bootstrap-token-auth",
        action="store_true",
        help="accept bootstrap tokens (kube-system/bootstrap-token-<id> Secrets) as bearer tokens",
    )
    security.add_argument(
        "--encryption-provider-config",
        default="",
        help="EncryptionConfiguration file: resources encrypted at rest (AES-GCM) and their keys",
    )
    security.add_argument(
        "--reencrypt",
        action="store_true",
        help="after start-up, store every encrypted resource again with the current first key",
    )
    kubelets = parser.add_argument_group("kubelet connections (logs, exec, attach, port-forward, stats)")
    kubelets.add_argument(
        "--kubelet-client-certificate",
        default="",
        help="client certificate presented to kubelets (PEM; bootstrap: pki/apiserver-kubelet-client.crt)",
    )
    kubelets.add_argument("--kubelet-client-key", default="", help="key of --kubelet-client-certificate")
    kubelets.add_argument(
        "--kubelet-certificate-authority",
        default="",
        help="verify kubelets' serving certificates against this CA (PEM); unset: not verified",
    )
    kubelets.add_argument(
        "--kubelet-preferred-address-types",
        default=",".join(DEFAULT_ADDRESS_TYPES),
        help="node address types to dial a kubelet at, in order",
    )
    kubelets.add_argument(
        "--kubelet-insecure-plaintext",
        action="store_true",
        help="dial kubelets in plaintext (kubelets run with --node-api-insecure; development only)",
    )
    parser.add_argument(
        "--admission-plugins",
        default=",".join(DEFAULT_ADMISSION_PLUGINS),
        help="ordered admission plugins: NamespaceLifecycle, LimitRanger, ServiceAccount, "
        "DefaultTolerationSeconds, NodeRestriction, Priority, ResourceQuota, SecurityContextDeny, "
        "AlwaysAdmit, AlwaysDeny (ServiceAllocation always runs)",
    )
    parser.add_argument(
        "--disable-admission-plugins",
        default="",
        help="comma list of plugins taken out of --admission-plugins (e.g. ServiceAccount)",
    )


def config_from(args: argparse.Namespace) -> Config:
    low, _, high = args.service_node_port_range.partition("-")
    return Config(
        listen=args.listen,
        storage=args.storage,
        sqlite_path=args.sqlite_path,
        sqlite_synchronous=args.sqlite_synchronous,
        etcd_servers=[s for s in args.etcd_servers.split(",") if s],
        etcd_prefix=args.etcd_prefix,
        etcd_cafile=args.etcd_cafile,
        etcd_certfile=args.etcd_certfile,
        etcd_keyfile=args.etcd_keyfile,
        service_cidr=args.service_cluster_ip_range,
        node_port_range=(int(low), int(high)),
        advertise_address=args.advertise_address,
        metrics_listen=args.metrics_listen,
        history_seconds=args.history_seconds,
        event_ttl_seconds=args.event_ttl_seconds,
        insecure=args.insecure,
        tls_cert_file=args.tls_cert_file,
        tls_key_file=args.tls_private_key_file,
        client_ca_file=args.client_ca_file,
        token_listen=args.token_listen,
        token_auth_file=args.token_auth_file,
        service_account_key_file=args.service_account_key_file,
        service_account_signing_key_file=args.service_account_signing_key_file,
        service_account_issuer=args.service_account_issuer,
        api_audiences=[a for a in args.api_audiences.split(",") if a],
        authorization_modes=["AlwaysAllow"]
        if args.insecure
        else [m for m in args.authorization_mode.split(",") if m],
        anonymous_auth=args.anonymous_auth,
        enable_bootstrap_token_auth=args.enable_bootstrap_token_auth,
        admission_plugins=[
            p
            for p in args.admission_plugins.split(",")
            if p and p not in args.disable_admission_plugins.split(",")
        ],
        encryption_provider_config=args.encryption_provider_config,
        reencrypt=args.reencrypt,
        kubelet_client_certificate=args.kubelet_client_certificate,
        kubelet_client_key=args.kubelet_client_key,
        kubelet_certificate_authority=args.kubelet_certificate_authority,
        kubelet_preferred_address_types=[t for t in args.kubelet_preferred_address_types.split(",") if t],
        kubelet_insecure_plaintext=args.kubelet_insecure_plaintext,
    )


def run(args: argparse.Namespace) -> int:
    configure_logging("apiserver")
    try:
        asyncio.run(serve(config_from(args)))
    except KeyboardInterrupt:
        return 0
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pinnace-apiserver", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
