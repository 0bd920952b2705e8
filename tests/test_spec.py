"""The spec grammar: parsing, typing by signature, and printing back."""

from __future__ import annotations

from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imtrans_core.errors import SpecError
from imtrans_core.spec import Spec, bind, format_value, parse


def factory(
    weight: float = 1.0,
    op: Literal["sobel", "diff"] = "sobel",
    abs: bool = False,
    n: int = 3,
    name: str = "x",
    limit: int | None = None,
):
    """A factory with one parameter of each kind."""
    return dict(weight=weight, op=op, abs=abs, n=n, name=name, limit=limit)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("resnet9", Spec("resnet9")),
        ("gc:0.3", Spec("gc", ("0.3",))),
        ("resnet9:ngf=32,n_blocks=6", Spec("resnet9", (), {"ngf": "32", "n_blocks": "6"})),
        ("gc:0.3,op=diff", Spec("gc", ("0.3",), {"op": "diff"})),
        ("folder:ct=/a/b,mr=/c", Spec("folder", (), {"ct": "/a/b", "mr": "/c"})),
        ("x:path='a,b=c'", Spec("x", (), {"path": "a,b=c"})),
        (" resnet9 : ngf = 32 ", Spec("resnet9", (), {"ngf": "32"})),
        ("resnet9,ngf=32", Spec("resnet9", (), {"ngf": "32"})),
    ],
)
def test_parse(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "expected name"),
        (":3", "expected name"),
        ("gc:op=diff,0.3", "positional value"),
        ("gc:a=1,a=2", "given twice"),
        ("gc:1,,2", "empty item"),
        ("gc:x='open", "unclosed quote"),
        ("gc:3x=1", "not a parameter name"),
    ],
)
def test_parse_errors_are_one_line(text, words):
    with pytest.raises(SpecError, match=words) as info:
        parse(text)
    assert "\n" not in str(info.value)


def test_bind_types_by_signature():
    resolved = bind(factory, parse("gc:0.3,op=diff,abs=true,n=5,name=123"))
    assert resolved.kwargs == {"weight": 0.3, "op": "diff", "abs": True, "n": 5, "name": "123", "limit": None}
    assert isinstance(resolved.kwargs["name"], str)  # '123' stays a string for a str parameter


def test_bind_optional_and_none():
    assert bind(factory, parse("f:limit=7")).kwargs["limit"] == 7
    assert bind(factory, parse("f:limit=none")).kwargs["limit"] is None


@pytest.mark.parametrize(
    "text, words",
    [
        ("f:bogus=3", "has no parameter 'bogus'; f accepts: weight=1.0, op=sobel, abs=false, n=3"),
        ("f:n=2.5", "n='2.5' expected an integer"),
        ("f:op=prewitt", "expected one of sobel, diff"),
        ("f:abs=maybe", "expected true or false"),
        ("f:1,sobel,true,3,x,none,extra", "at most 6 positional"),
        ("f:0.5,weight=1", "both by position and by name"),
    ],
)
def test_bind_errors_name_the_accepted_parameters(text, words):
    with pytest.raises(SpecError, match=words.replace("(", r"\(")) as info:
        bind(factory, parse(text))
    assert "\n" not in str(info.value)


def test_missing_required_parameter():
    def needs(root: str, depth: int = 1):
        return root

    with pytest.raises(SpecError, match="needs a value for 'root'"):
        bind(needs, parse("needs"))


def test_resolved_spec_round_trips():
    resolved = bind(factory, parse("gc:0.3,name='a b,c'"))
    text = str(resolved)
    assert text == "gc:weight=0.3,op=sobel,abs=false,n=3,name='a b,c',limit=none"
    assert bind(factory, parse(text)) == resolved


def test_overrides_win_over_the_spec():
    assert bind(factory, parse("f:n=5"), n=9).kwargs["n"] == 9


names = st.sampled_from(["sobel", "diff"])
texts = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=12).filter(
    lambda t: not ("'" in t and '"' in t)
)


@given(
    weight=st.floats(allow_nan=False, allow_infinity=False),
    op=names,
    abs=st.booleans(),
    n=st.integers(-(10**6), 10**6),
    name=texts,
    limit=st.none() | st.integers(0, 99),
)
def test_round_trip_property(weight, op, abs, n, name, limit):
    values = dict(weight=weight, op=op, abs=abs, n=n, name=name, limit=limit)
    resolved = bind(factory, Spec("f", (), {}), **values)
    assert bind(factory, parse(str(resolved))) == resolved


@pytest.mark.parametrize(
    "value, text", [(True, "true"), (None, "none"), (0.1, "0.1"), ("", "''"), ("it's", '"it\'s"')]
)
def test_format_value(value, text):
    assert format_value(value) == text


def test_a_value_with_both_quotes_cannot_be_written():
    with pytest.raises(SpecError, match="both quote characters"):
        format_value('it\'s "x"')
