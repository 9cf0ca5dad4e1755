"""Validation shared by every kind: object metadata, labels, selectors, quantities."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from pinnace.api.meta.v1 import meta_pb2
from services.machinery import errors as ferr
from services.machinery import formats
from services.machinery.errors import FieldError
from services.machinery.quantity import Quantity, QuantityError, parse_quantity

NameRule = Callable[[str], list[str]]
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024


def path_segment_name(value: str) -> list[str]:
    """Names used as URL path segments only (RBAC roles): anything but '/', '%', '.', '..'."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def check(errors: list[FieldError], path: str, value: str, problems: Iterable[str]) -> None:
    for problem in problems:
        errors.append(ferr.invalid(path, value, problem))


def validate_object_meta(
    meta: meta_pb2.ObjectMeta,
    *,
    namespaced: bool,
    name_rule: NameRule = formats.dns1123_subdomain,
    path: str = "metadata",
) -> list[FieldError]:
    errors: list[FieldError] = []
    if meta.name:
        check(errors, f"{path}.name", meta.name, name_rule(meta.name))
    elif meta.generate_name:
        prefix = meta.generate_name.rstrip("-") or meta.generate_name
        check(errors, f"{path}.generateName", meta.generate_name, name_rule(prefix))
    else:
        errors.append(ferr.required(f"{path}.name", "name or generateName is required"))
    if namespaced:
        if not meta.namespace:
            errors.append(ferr.required(f"{path}.namespace"))
        else:
            check(errors, f"{path}.namespace", meta.namespace, formats.dns1123_label(meta.namespace))
    elif meta.namespace:
        errors.append(ferr.forbidden(f"{path}.namespace", "not allowed on this type"))
    errors += validate_labels(meta.labels, f"{path}.labels")
    errors += validate_annotations(meta.annotations, f"{path}.annotations")
    errors += _validate_owner_references(meta, f"{path}.ownerReferences")
    for i, finalizer in enumerate(meta.finalizers):
        check(errors, f"{path}.finalizers[{i}]", finalizer, formats.qualified_name(finalizer))
    if meta.HasField("deletion_grace_period_seconds") and meta.deletion_grace_period_seconds < 0:
        errors.append(
            ferr.invalid(
                f"{path}.deletionGracePeriodSeconds",
                meta.deletion_grace_period_seconds,
                "must be greater than or equal to 0",
            )
        )
    return errors


def validate_labels(labels: Mapping[str, str], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for key, value in labels.items():
        check(errors, path, key, formats.qualified_name(key))
        check(errors, path, value, formats.label_value(value))
    return errors


def validate_annotations(annotations: Mapping[str, str], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    total = 0
    for key, value in annotations.items():
        check(errors, path, key, formats.qualified_name(key.lower()))
        total += len(key) + len(value)
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errors.append(ferr.too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errors


def _validate_owner_references(meta: meta_pb2.ObjectMeta, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    controllers = 0
    for i, ref in enumerate(meta.owner_references):
        item = f"{path}[{i}]"
        for field, value in (
            ("apiVersion", ref.api_version),
            ("kind", ref.kind),
            ("name", ref.name),
            ("uid", ref.uid),
        ):
            if not value:
                errors.append(ferr.required(f"{item}.{field}"))
        if ref.controller:
            controllers += 1
    if controllers > 1:
        errors.append(ferr.invalid(path, controllers, "Only one reference can have Controller set to true"))
    return errors


_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(selector: meta_pb2.LabelSelector, path: str) -> list[FieldError]:
    errors = validate_labels(selector.match_labels, f"{path}.matchLabels")
    for i, expr in enumerate(selector.match_expressions):
        item = f"{path}.matchExpressions[{i}]"
        check(errors, f"{item}.key", expr.key, formats.qualified_name(expr.key))
        if expr.operator in ("In", "NotIn"):
            if not expr.values:
                errors.append(
                    ferr.required(f"{item}.values", "must be specified when `operator` is 'In' or 'NotIn'")
                )
        elif expr.operator in ("Exists", "DoesNotExist"):
            if expr.values:
                errors.append(
                    ferr.forbidden(
                        f"{item}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                    )
                )
        else:
            errors.append(ferr.not_supported(f"{item}.operator", expr.operator, _SELECTOR_OPERATORS))
        for j, value in enumerate(expr.values):
            check(errors, f"{item}.values[{j}]", value, formats.label_value(value))
    return errors


def parsed_quantity(errors: list[FieldError], path: str, text: str) -> Quantity | None:
    try:
        return parse_quantity(text)
    except QuantityError as exc:
        errors.append(ferr.invalid(path, text, str(exc)))
        return None


def validate_nonnegative_quantities(
    resources: Mapping[str, str], path: str, *, check_names: bool = True
) -> list[FieldError]:
    errors: list[FieldError] = []
    for name, text in resources.items():
        item = f"{path}[{name}]"
        if check_names:
            check(errors, item, name, formats.qualified_name(name))
        quantity = parsed_quantity(errors, item, text)
        if quantity is not None and quantity.value < 0:
            errors.append(ferr.invalid(item, text, "must be greater than or equal to 0"))
    return errors


def nonnegative(errors: list[FieldError], path: str, value: int) -> None:
    if value < 0:
        errors.append(ferr.invalid(path, value, "must be greater than or equal to 0"))


def positive(errors: list[FieldError], path: str, value: int) -> None:
    if value <= 0:
        errors.append(ferr.invalid(path, value, "must be greater than 0"))


def supported(errors: list[FieldError], path: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        errors.append(ferr.not_supported(path, value, allowed))


def unique_names(errors: list[FieldError], path: str, names: Iterable[str], field: str = "name") -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name and name in seen:
            errors.append(ferr.duplicate(f"{path}[{i}].{field}", name))
        seen.add(name)
