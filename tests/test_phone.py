"""Phone numbers in their two written forms: ours with the +, Vonage's without it."""

import pytest

from app.domain.phone import is_e164, with_plus, without_plus


@pytest.mark.parametrize(
    ("ours", "vonages"),
    [("+442071838750", "442071838750"), ("+14155550100", "14155550100")],
)
def test_a_number_turns_from_our_form_into_vonages_and_back(ours, vonages):
    """Vonage writes E.164 without its +, we write it with one; a + is never doubled."""
    assert without_plus(ours) == vonages
    assert with_plus(vonages) == ours
    assert with_plus(ours) == ours


def test_a_sender_id_has_no_plus_to_lose():
    assert without_plus("MyBrand") == "MyBrand"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+442071838750", True),
        ("442071838750", True),
        ("00442071838750", False),  # a 00 prefix is not E.164
        ("+44 20 7183 8750", False),  # nor are spaces
        ("\u0664\u0664\u0662\u0660\u0667\u0661\u0668\u0663\u0668\u0667\u0665\u0660", False),
    ],
)
def test_e164_is_ascii_digits_with_or_without_the_plus(text, expected):
    assert is_e164(text) is expected
