"""Segments are counted exactly as the network splits them."""

import pytest

from app.domain.sms_encoding import GSM7, UCS2, encode, smart_encode


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("a" * 160, GSM7, 1),
        ("a" * 161, GSM7, 2),
        ("a" * 306, GSM7, 2),
        ("a" * 307, GSM7, 3),
        ("ж" * 70, UCS2, 1),
        ("ж" * 71, UCS2, 2),
        ("ж" * 134, UCS2, 2),
        ("ж" * 135, UCS2, 3),
        # Extension characters cost two septets.
        ("{" * 80, GSM7, 1),
        ("{" * 80 + "a", GSM7, 2),
        ("€" * 80, GSM7, 1),
        # An extension character straddling the 153rd septet moves whole to the next part.
        ("a" * 152 + "{" + "a" * 152, GSM7, 3),
        ("a" * 151 + "{" + "a" * 153, GSM7, 2),
        # An emoji (two UTF-16 units) straddling the 67th unit moves whole to the next part.
        ("ж" * 66 + "😀" + "ж" * 66, UCS2, 3),
        ("ж" * 65 + "😀" + "ж" * 67, UCS2, 2),
        ("😀" * 35, UCS2, 1),
        ("😀" * 36, UCS2, 2),
        # One non-GSM character makes the whole text UCS-2.
        ("a" * 69 + "ж", UCS2, 1),
        ("a" * 70 + "ж", UCS2, 2),
        ("Grüße aus Köln! ¿Año? Ça va, très bien.", GSM7, 1),
    ],
)
def test_segments(text, encoding, segments):
    encoded = encode(text)
    assert (encoded.encoding, encoded.segments) == (encoding, segments)


def test_force_unicode_counts_ucs2():
    assert encode("a" * 71, force_unicode=True).segments == 2


def test_characters_counts_code_points():
    assert encode("😀ab").characters == 3


def test_smart_encoding_turns_look_alikes_into_gsm7():
    text = "“Hello” – it’s\u00a0here…\u200b"
    replaced = smart_encode(text)
    assert replaced == '"Hello" - it\'s here...'
    assert encode(replaced).encoding == GSM7


def test_smart_encoding_keeps_real_unicode():
    assert encode(smart_encode("“Привет”")).encoding == UCS2


def test_repr_hides_the_text():
    assert "secret words" not in repr(encode("secret words"))
