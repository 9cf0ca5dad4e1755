from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.machinery.quantity import Format, Quantity, QuantityError, canonicalize, parse_quantity


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1.5", "1500m"),
        ("1.5Gi", "1536Mi"),
        ("0.5Gi", "512Mi"),
        ("0.9Gi", "966367641600m"),
        ("1000m", "1"),
        ("100m", "100m"),
        ("1000", "1k"),
        ("1100", "1100"),
        ("1024", "1024"),
        ("1Ki", "1Ki"),
        ("512", "512"),
        ("1e3", "1e3"),
        ("12e2", "1200"),
        ("-1.5", "-1500m"),
        ("0", "0"),
        ("0Gi", "0"),
        ("1n", "1n"),
        ("0.0000000001", "1n"),
        ("+5", "5"),
        (".5", "500m"),
        ("5.", "5"),
        ("2Ei", "2Ei"),
        ("129M", "129M"),
        ("128974848", "128974848"),
    ],
)
def test_canonical_form_matches_kubernetes(text: str, canonical: str) -> None:
    assert canonicalize(text) == canonical


@pytest.mark.parametrize("bad", ["", "one", "1.5.5", "1 Gi", "1GiB", "1ki", "e3", "--1", "1e", "."])
def test_rejects_non_quantities(bad: str) -> None:
    with pytest.raises(QuantityError, match="quantities must match the regular expression"):
        parse_quantity(bad)


def test_milli_and_int_values_round_up() -> None:
    assert parse_quantity("100m").milli_value() == 100
    assert parse_quantity("1.5").milli_value() == 1500
    assert parse_quantity("1n").milli_value() == 1
    assert parse_quantity("1.5").int_value() == 2
    assert parse_quantity("1Mi").int_value() == 1048576


def test_arithmetic_keeps_left_format_unless_zero() -> None:
    total = parse_quantity("1Gi") + parse_quantity("512Mi")
    assert str(total) == "1536Mi"
    assert (Quantity(Fraction(0)) + parse_quantity("1Ki")).format is Format.BINARY_SI
    assert str(parse_quantity("1") - parse_quantity("250m")) == "750m"
    assert parse_quantity("1Gi") > parse_quantity("1G")
    assert parse_quantity("1000m") == parse_quantity("1")


_quantity_texts = st.builds(
    lambda number, frac, suffix: f"{number}{'.' + frac if frac else ''}{suffix}",
    st.integers(min_value=0, max_value=10**12),
    st.one_of(st.just(""), st.text(alphabet="0123456789", min_size=1, max_size=9)),
    st.sampled_from(["", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti", "e3", "e-3", "E6", "n", "u"]),
)


@given(_quantity_texts)
def test_canonical_text_round_trips(text: str) -> None:
    quantity = parse_quantity(text)
    canonical = str(quantity)
    again = parse_quantity(canonical)
    assert again.value == quantity.value
    assert str(again) == canonical


@given(_quantity_texts, _quantity_texts, _quantity_texts)
def test_addition_is_exact_commutative_and_associative(a: str, b: str, c: str) -> None:
    x, y, z = parse_quantity(a), parse_quantity(b), parse_quantity(c)
    assert (x + y).value == (y + x).value
    assert ((x + y) + z).value == (x + (y + z)).value
    assert ((x + y) - y).value == x.value
