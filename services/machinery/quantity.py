"""Kubernetes resource quantities ("100m", "1.5Gi", "2e3"): exact parsing, arithmetic and the
canonical text form.

Values are held as exact fractions so that sums of requests never drift (the scheduler adds
thousands of them). The canonical form follows apimachinery's resource.Quantity: values round
up to the nano, a binary suffix is kept only for whole numbers of 1024 or more, and the suffix
is as large as possible without a fractional mantissa ("1.5" -> "1500m", "1.5Gi" -> "1536Mi").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from functools import lru_cache, total_ordering

QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTPE]*[-+]?[0-9]*)$"
_QUANTITY_RE = re.compile(
    r"^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)((?:[KMGTPE]i)|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)


class Format(Enum):
    DECIMAL_SI = "DecimalSI"
    BINARY_SI = "BinarySI"
    DECIMAL_EXPONENT = "DecimalExponent"


_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_BY_EXPONENT = {v: k for k, v in _DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_BINARY_BY_EXPONENT = {v: k for k, v in _BINARY_SUFFIXES.items()}
_NANO = Fraction(1, 10**9)


class QuantityError(ValueError):
    """The text is not a quantity; the message is the one Kubernetes gives."""

    def __init__(self, text: str) -> None:
        super().__init__(f"quantities must match the regular expression '{QUANTITY_PATTERN}'")
        self.text = text


@total_ordering
@dataclass(frozen=True)
class Quantity:
    """An exact amount plus the notation it should be written in."""

    value: Fraction
    format: Format = Format.DECIMAL_SI

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _round_up_to_nano(Fraction(self.value)))

    # ------------------------------------------------------------------ arithmetic

    def __add__(self, other: Quantity) -> Quantity:
        return Quantity(self.value + other.value, self._result_format(other))

    def __sub__(self, other: Quantity) -> Quantity:
        return Quantity(self.value - other.value, self._result_format(other))

    def __neg__(self) -> Quantity:
        return Quantity(-self.value, self.format)

    def __mul__(self, factor: int) -> Quantity:
        return Quantity(self.value * factor, self.format)

    def _result_format(self, other: Quantity) -> Format:
        # Like Quantity.Add in apimachinery: a zero left side takes the other's notation.
        return other.format if self.value == 0 else self.format

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self.value < other.value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def is_zero(self) -> bool:
        return self.value == 0

    # ------------------------------------------------------------------ conversions

    def milli_value(self) -> int:
        """The value in thousandths, rounded up (the unit the scheduler uses for CPU)."""
        return math.ceil(self.value * 1000)

    def int_value(self) -> int:
        """The value rounded up to a whole number (the unit used for bytes and counts)."""
        return math.ceil(self.value)

    def __str__(self) -> str:
        return format_quantity(self)

    def __repr__(self) -> str:
        return f"Quantity({format_quantity(self)!r})"


def _round_up_to_nano(value: Fraction) -> Fraction:
    """Round the magnitude up to a whole nano, so a tiny request never becomes zero."""
    if value.denominator == 1 or (value / _NANO).denominator == 1:
        return value
    magnitude = math.ceil(abs(value) / _NANO) * _NANO
    return magnitude if value > 0 else -magnitude


@lru_cache(maxsize=4096)
def parse_quantity(text: str) -> Quantity:
    """Parse Kubernetes' quantity grammar; raise QuantityError on anything else.

    Cached: a cluster writes the same few dozen quantities ("100m", "500Mi") over and over, and
    Quantity is immutable."""
    match = _QUANTITY_RE.match(text.strip()) if text else None
    if match is None or text != text.strip():
        raise QuantityError(text)
    sign, number, suffix = match.group(1), match.group(2), match.group(3) or ""
    if number == ".":
        raise QuantityError(text)
    amount = Fraction(number)
    if sign == "-":
        amount = -amount
    if suffix in _BINARY_SUFFIXES:
        return Quantity(amount * 2 ** _BINARY_SUFFIXES[suffix], Format.BINARY_SI)
    if suffix in _DECIMAL_SUFFIXES:
        return Quantity(amount * Fraction(10) ** _DECIMAL_SUFFIXES[suffix], Format.DECIMAL_SI)
    exponent = int(suffix[1:])
    return Quantity(amount * Fraction(10) ** exponent, Format.DECIMAL_EXPONENT)


def format_quantity(quantity: Quantity) -> str:
    """The canonical text of a quantity (what the apiserver stores and returns)."""
    value = quantity.value
    if value == 0:
        return "0"
    fmt = quantity.format
    if fmt is Format.BINARY_SI and (abs(value) < 1024 or value.denominator != 1):
        fmt = Format.DECIMAL_SI
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    if fmt is Format.BINARY_SI:
        whole = int(magnitude)
        exponent = 0
        while exponent < 60 and whole % 1024 == 0:
            whole //= 1024
            exponent += 10
        return f"{sign}{whole}{_BINARY_BY_EXPONENT.get(exponent, '')}"
    mantissa, exponent = _decimal_mantissa(magnitude)
    if fmt is Format.DECIMAL_EXPONENT:
        return f"{sign}{mantissa}" if exponent == 0 else f"{sign}{mantissa}e{exponent}"
    if exponent > 18:
        mantissa, exponent = mantissa * 10 ** (exponent - 18), 18
    return f"{sign}{mantissa}{_DECIMAL_BY_EXPONENT[exponent]}"


def _decimal_mantissa(magnitude: Fraction) -> tuple[int, int]:
    """Integer mantissa and the largest exponent (a multiple of 3, at least -9) that keep it whole."""
    exponent = -9
    mantissa = int(magnitude * 10**9)
    while mantissa % 1000 == 0 and mantissa != 0:
        mantissa //= 1000
        exponent += 3
    return mantissa, exponent


def canonicalize(text: str) -> str:
    return format_quantity(parse_quantity(text))
