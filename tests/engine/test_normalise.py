"""Normal forms of identity values, the same at intake and in the finder."""

from __future__ import annotations

import pytest

from requests.engine.normalise import (
    national_digits,
    normalise,
    normalise_email,
    normalise_name,
    normalise_phone,
)


def test_emails_are_trimmed_and_lower_cased():
    assert normalise_email("  LUISG@Embraer.com.br ") == "luisg@embraer.com.br"


@pytest.mark.parametrize(
    ("typed", "region"),
    [
        ("+33 6 12 34 56 78", None),
        ("0033612345678", None),
        ("06 12 34 56 78", "FR"),
        ("+33 (0)6-12-34-56-78", None),
    ],
)
def test_phones_in_any_written_form_become_e164(typed, region):
    assert normalise_phone(typed, region) == "+33612345678"


def test_a_national_phone_without_a_region_is_refused():
    with pytest.raises(ValueError):
        normalise_phone("06 12 34 56 78")


def test_a_value_that_is_no_phone_number_is_refused():
    with pytest.raises(ValueError):
        normalise_phone("+33 12", None)


def test_the_national_digits_are_what_every_written_form_ends_with():
    assert national_digits("+551239235555") == "1239235555"


def test_names_have_whitespace_collapsed_and_case_folded():
    assert normalise_name("  Luís   GONÇALVES ") == "luís gonçalves"
    assert normalise_name("STRASSE") == normalise_name("straße")


def test_custom_types_are_only_trimmed():
    assert normalise("loyalty_card", "  AB-12 ") == "AB-12"
    assert normalise("phone", "+33612345678") == "+33612345678"
