"""Validation of Service, Endpoints and Ingress."""

from __future__ import annotations

from dataclasses import dataclass

from pinnace.api.core.v1 import core_pb2
from pinnace.api.networking.v1 import networking_pb2
from services.machinery import errors as ferr
from services.machinery import formats
from services.machinery.errors import FieldError
from services.machinery.validation.common import check, supported, validate_labels

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
PROTOCOLS = ("SCTP", "TCP", "UDP")
MAX_CLIENT_IP_TIMEOUT = 86400


@dataclass(frozen=True)
class ServiceRules:
    """Cluster settings that service validation depends on (the apiserver's flags)."""

    node_port_range: tuple[int, int] = (30000, 32767)


def validate_service(svc: core_pb2.Service, rules: ServiceRules = ServiceRules()) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = svc.spec
    supported(errors, "spec.type", spec.type, SERVICE_TYPES)
    headless = spec.cluster_ip == "None"
    if spec.type == "ExternalName":
        if not spec.external_name:
            errors.append(ferr.required("spec.externalName"))
        else:
            check(
                errors, "spec.externalName", spec.external_name, formats.dns1123_subdomain(spec.external_name)
            )
        if spec.cluster_ip and not headless:
            errors.append(ferr.forbidden("spec.clusterIP", "may not be set for ExternalName services"))
    elif not spec.ports and not headless:
        errors.append(ferr.required("spec.ports"))
    if spec.cluster_ip and not headless:
        check(errors, "spec.clusterIP", spec.cluster_ip, formats.ip_address(spec.cluster_ip))
    if headless and spec.type in ("NodePort", "LoadBalancer"):
        errors.append(
            ferr.invalid(
                "spec.clusterIP", "None", "may not be set to 'None' for LoadBalancer or NodePort services"
            )
        )
    _validate_ports(errors, spec, rules)
    errors.extend(validate_labels(spec.selector, "spec.selector"))
    for i, ip in enumerate(spec.external_ips):
        check(errors, f"spec.externalIPs[{i}]", ip, formats.ip_address(ip))
    supported(errors, "spec.sessionAffinity", spec.session_affinity, ("ClientIP", "None"))
    config = spec.session_affinity_config
    if spec.session_affinity == "ClientIP":
        timeout = config.client_ip.timeout_seconds
        if not 0 < timeout <= MAX_CLIENT_IP_TIMEOUT:
            errors.append(
                ferr.invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    timeout,
                    f"must be greater than 0 and less than {MAX_CLIENT_IP_TIMEOUT}",
                )
            )
    elif spec.HasField("session_affinity_config"):
        errors.append(
            ferr.invalid(
                "spec.sessionAffinityConfig",
                "",
                f"must not be set when `sessionAffinity` is {spec.session_affinity}",
            )
        )
    if spec.type in ("NodePort", "LoadBalancer"):
        supported(errors, "spec.externalTrafficPolicy", spec.external_traffic_policy, ("Cluster", "Local"))
    elif spec.external_traffic_policy:
        errors.append(
            ferr.invalid(
                "spec.externalTrafficPolicy",
                spec.external_traffic_policy,
                "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
            )
        )
    return errors


def _validate_ports(errors: list[FieldError], spec: core_pb2.ServiceSpec, rules: ServiceRules) -> None:
    names: set[str] = set()
    seen: set[tuple[int, str]] = set()
    node_ports: set[tuple[int, str]] = set()
    low, high = rules.node_port_range
    for i, port in enumerate(spec.ports):
        path = f"spec.ports[{i}]"
        if len(spec.ports) > 1 and not port.name:
            errors.append(ferr.required(f"{path}.name"))
        if port.name:
            check(errors, f"{path}.name", port.name, formats.dns1123_label(port.name))
            if port.name in names:
                errors.append(ferr.duplicate(f"{path}.name", port.name))
            names.add(port.name)
        check(errors, f"{path}.port", str(port.port), formats.port_number(port.port))
        supported(errors, f"{path}.protocol", port.protocol, PROTOCOLS)
        key = (port.port, port.protocol)
        if key in seen:
            errors.append(ferr.duplicate(path, f"{port.port}/{port.protocol}"))
        seen.add(key)
        target = port.target_port
        which = target.WhichOneof("value")
        if which == "int_val":
            check(errors, f"{path}.targetPort", str(target.int_val), formats.port_number(target.int_val))
        elif which == "str_val":
            check(errors, f"{path}.targetPort", target.str_val, formats.port_name(target.str_val))
        if port.node_port:
            if spec.type not in ("NodePort", "LoadBalancer"):
                errors.append(
                    ferr.forbidden(f"{path}.nodePort", f"may not be used when `type` is '{spec.type}'")
                )
            elif not low <= port.node_port <= high:
                errors.append(
                    ferr.invalid(
                        f"{path}.nodePort",
                        port.node_port,
                        f"provided port is not in the valid range. The range of valid ports is {low}-{high}",
                    )
                )
            node_key = (port.node_port, port.protocol)
            if node_key in node_ports:
                errors.append(ferr.duplicate(f"{path}.nodePort", port.node_port))
            node_ports.add(node_key)


def validate_endpoints(endpoints: core_pb2.Endpoints) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, subset in enumerate(endpoints.subsets):
        path = f"subsets[{i}]"
        if not subset.addresses and not subset.not_ready_addresses:
            errors.append(ferr.required(path, "must specify `addresses` or `notReadyAddresses`"))
        for field, addresses in (
            ("addresses", subset.addresses),
            ("notReadyAddresses", subset.not_ready_addresses),
        ):
            for j, address in enumerate(addresses):
                check(errors, f"{path}.{field}[{j}].ip", address.ip, formats.ip_address(address.ip))
        for j, port in enumerate(subset.ports):
            item = f"{path}.ports[{j}]"
            if len(subset.ports) > 1 and not port.name:
                errors.append(ferr.required(f"{item}.name"))
            check(errors, f"{item}.port", str(port.port), formats.port_number(port.port))
            supported(errors, f"{item}.protocol", port.protocol, PROTOCOLS)
    return errors


def _validate_backend(errors: list[FieldError], backend: networking_pb2.IngressBackend, path: str) -> None:
    has_service, has_resource = backend.HasField("service"), backend.HasField("resource")
    if has_service == has_resource:
        errors.append(ferr.invalid(path, "", "must specify exactly one of `service` or `resource`"))
    if has_service:
        service = backend.service
        if not service.name:
            errors.append(ferr.required(f"{path}.service.name"))
        if bool(service.port.name) == bool(service.port.number):
            errors.append(
                ferr.invalid(f"{path}.service.port", "", "must specify exactly one of `name` or `number`")
            )


def validate_ingress(ingress: networking_pb2.Ingress) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = ingress.spec
    if not spec.rules and not spec.HasField("default_backend"):
        errors.append(ferr.invalid("spec", "", "either `defaultBackend` or `rules` must be specified"))
    if spec.HasField("default_backend"):
        _validate_backend(errors, spec.default_backend, "spec.defaultBackend")
    for i, rule in enumerate(spec.rules):
        path = f"spec.rules[{i}]"
        if rule.host:
            check(errors, f"{path}.host", rule.host, formats.dns1123_subdomain(rule.host.removeprefix("*.")))
        for j, http_path in enumerate(rule.http.paths):
            item = f"{path}.http.paths[{j}]"
            supported(
                errors, f"{item}.pathType", http_path.path_type, ("Exact", "ImplementationSpecific", "Prefix")
            )
            if http_path.path_type in ("Exact", "Prefix") and not http_path.path.startswith("/"):
                errors.append(ferr.invalid(f"{item}.path", http_path.path, "must be an absolute path"))
            _validate_backend(errors, http_path.backend, f"{item}.backend")
    return errors
