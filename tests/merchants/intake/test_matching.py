"""References in bank text: found however banks decorate them, never invented."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from merchants.domain import REFERENCE_ALPHABET, REFERENCE_RE, new_reference
from merchants.intake import connectors, matching

references = st.text(alphabet=REFERENCE_ALPHABET, min_size=8, max_size=8).map(lambda body: "CP" + body)
noise = st.text(alphabet=string.ascii_letters + string.digits + " .-_/", max_size=30)


def test_the_bank_decorations_of_the_issue_are_tolerated() -> None:
    assert matching.candidates("MBVCB.3312.CP7K2M9QXA.thanh toan") == ["CP7K2M9QXA"]
    assert matching.candidates("cp7k2 m9qxa") == ["CP7K2M9QXA"]
    assert matching.candidates("IBFT CP7K2M9QXA FT26336123") == ["CP7K2M9QXA"]
    assert matching.candidates("thanh toan", "CP7K2M9QXA") == ["CP7K2M9QXA"]
    assert matching.candidates("", None) == []


def test_characters_outside_the_alphabet_are_no_reference() -> None:
    assert matching.candidates("CP7K2M9QX0") == []  # 0 is not in the alphabet
    assert matching.candidates("CP7K2M9QI") == []  # too short, and I is not in it


@given(reference=references, before=noise, after=noise, upper=st.booleans())
def test_a_reference_is_found_between_any_decorations(
    reference: str, before: str, after: str, upper: bool
) -> None:
    spaced = " ".join([reference[:4], reference[4:]])
    text = f"{before}.{spaced}.{after}"
    found = matching.candidates(text if upper else text.lower())
    assert reference in found


@given(text=st.text(max_size=200), code=st.one_of(st.none(), st.text(max_size=40)))
def test_every_candidate_is_a_well_formed_reference_from_the_text(text: str, code: str | None) -> None:
    found = matching.candidates(text, code)
    assert len(found) == len(set(found)) <= matching.MAX_CANDIDATES
    folded = matching.fold(text) + "\0" + matching.fold(code or "")
    for reference in found:
        assert REFERENCE_RE.fullmatch(reference)
        assert reference in folded


def test_generated_references_are_found() -> None:
    for _ in range(200):
        ref = new_reference()
        assert matching.candidates(f"ND:{ref.lower()}") == [ref]


@given(st.text(max_size=60))
def test_the_connector_setting_parser_refuses_or_parses(text: str) -> None:
    try:
        parsed = connectors.parse_setting(text)
    except ValueError as exc:
        message = str(exc)
        parsed = {}
        assert message
    for name, connector in parsed.items():
        assert connectors.NAME.fullmatch(name)
        assert connector.format in connectors.FORMATS
        assert connector.secrets


def test_the_connector_setting_syntax() -> None:
    parsed = connectors.parse_setting(
        "bank-a=chopay:whsec_one1,whsec_two2;  cho-han=sepay/970436:spk_12345678"
    )
    assert parsed["bank-a"].secrets == ("whsec_one1", "whsec_two2")
    assert parsed["cho-han"].bin == "970436"
    assert parsed["cho-han"].secrets == (connectors.hash_key("spk_12345678"),)  # API keys held hashed
    for bad in (
        "x=chopay",
        "x=other:secret123",
        "X=chopay:secret123",
        "x=payos/97:secret123",
        "x=chopay:short",
    ):
        try:
            connectors.parse_setting(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")
