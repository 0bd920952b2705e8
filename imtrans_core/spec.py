"""Spec strings: the one text form of a configured component.

Grammar::

    spec   := name [ (":" | ",") args ]
    args   := item ("," item)*
    item   := value | key "=" value          (positional items come first)
    value  := bare | "'" text "'" | '"' text '"'

``resnet9``, ``resnet9:ngf=32,n_blocks=6``, ``gc:0.3``, ``gc:0.3,op=diff`` and
``folder:ct=/data/ct,mr=/data/mr`` are specs. Values are typed by the factory's
signature (its annotations, else its defaults): the same text ``123`` becomes an
int for ``seed: int`` and a string for ``subject: str``, so a spec never needs
quotes except around a value holding ``,``, ``=`` or a quote. A spec never
imports code: names are looked up in a registry, which is the allowlist.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SpecError

_NAME = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(?:[:,](.*))?$", re.S)
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null"}


@dataclass(frozen=True)
class Spec:
    """A parsed spec: a name, positional texts and keyword values.

    Values are raw strings straight after parsing and typed Python values once
    :func:`bind` has matched them against a factory.
    """

    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        items = [format_value(v) for v in self.args]
        items += [f"{k}={format_value(v)}" for k, v in self.kwargs.items()]
        return self.name + (":" + ",".join(items) if items else "")


def parse(text: str) -> Spec:
    """Split a spec string into name, positional and keyword texts (no typing yet)."""
    if not isinstance(text, str):
        raise SpecError(f"a spec must be a string like 'resnet9:ngf=32', got {text!r}")
    match = _NAME.match(text)
    if not match:
        raise SpecError(
            f"bad spec {text!r}: expected name[:value,...][,key=value,...], e.g. 'resnet9:ngf=32'"
        )
    name, rest = match.group(1), match.group(2)
    args: list[str] = []
    kwargs: dict[str, str] = {}
    for item in _split_items(text, rest or ""):
        key, value = _split_key(item)
        if key is None:
            if kwargs:
                raise SpecError(f"bad spec {text!r}: positional value {value!r} after key=value items")
            args.append(value)
        elif key in kwargs:
            raise SpecError(f"bad spec {text!r}: {key!r} is given twice")
        else:
            kwargs[key] = value
    return Spec(name, tuple(args), kwargs)


def _split_items(text: str, rest: str) -> list[str]:
    """Split on commas outside quotes; quotes are kept for :func:`_split_key`."""
    items, current, quote = [], "", ""
    for char in rest:
        if quote:
            current += char
            quote = "" if char == quote else quote
        elif char in "'\"":
            current += char
            quote = char
        elif char == ",":
            items.append(current)
            current = ""
        else:
            current += char
    if quote:
        raise SpecError(f"bad spec {text!r}: unclosed quote {quote}")
    items.append(current)
    if rest.strip() == "":
        return []
    if any(not item.strip() for item in items):
        raise SpecError(f"bad spec {text!r}: empty item between commas")
    return items


def _split_key(item: str) -> tuple[str | None, str]:
    item = item.strip()
    if item[:1] not in "'\"" and "=" in item:
        key, value = item.split("=", 1)
        key = key.strip()
        if not key.isidentifier():
            raise SpecError(f"bad spec item {item!r}: {key!r} is not a parameter name")
        return key, _unquote(value.strip())
    return None, _unquote(item)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def format_value(value: Any) -> str:
    """Write a typed value so that parsing it against the same signature gives it back."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if "'" in text and '"' in text:
        raise SpecError(f"the value {text!r} holds both quote characters, which a spec string cannot carry")
    if text == "" or any(c in text for c in ",='\"") or text != text.strip():
        quote = '"' if "'" in text else "'"
        return f"{quote}{text}{quote}"
    return text


# ----------------------------------------------------------------------------- typing


def coerce(text: Any, annotation: Any, default: Any = inspect.Parameter.empty) -> Any:
    """Turn a spec text into the type a parameter asks for.

    Non-string values (overrides given from Python) pass through unchanged.
    Raises ``ValueError`` with a short reason when the text does not fit.
    """
    if not isinstance(text, str):
        return text
    if annotation is inspect.Parameter.empty or annotation is Any:
        if default is inspect.Parameter.empty or default is None:
            return _guess(text)
        annotation = type(default)
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        for choice in choices:
            if text == str(choice) or (
                not isinstance(choice, str) and _try(coerce, text, type(choice)) == choice
            ):
                return choice
        raise ValueError(f"expected one of {', '.join(map(str, choices))}")
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if type(None) in options and text.lower() in _NONE:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return coerce(text, option)
            except ValueError as err:
                errors.append(str(err))
        raise ValueError(" or ".join(errors))
    if annotation is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError("expected true or false")
    if annotation is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected an integer") from None
    if annotation is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError("expected a number") from None
    if annotation in (str, Path):
        return annotation(text)
    raise ValueError(f"cannot be given in a spec (type {getattr(annotation, '__name__', annotation)})")


def _try(fn: Callable, *args: Any) -> Any:
    try:
        return fn(*args)
    except ValueError:
        return object()


def _guess(text: str) -> Any:
    """Type an unannotated value without a default: bool, none, int, float, else str."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in _NONE:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def signature(factory: Callable | inspect.Signature) -> inspect.Signature:
    """The factory's signature with string annotations evaluated (a signature is returned as it is)."""
    if isinstance(factory, inspect.Signature):
        return factory
    try:
        return inspect.signature(factory, eval_str=True)
    except (NameError, TypeError):
        return inspect.signature(factory)


def describe_params(factory: Callable | inspect.Signature) -> str:
    """``ngf=64, n_blocks=9, norm='instance'``: the accepted parameters with defaults."""
    parts = []
    for p in signature(factory).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        parts.append(p.name if p.default is p.empty else f"{p.name}={format_value(p.default)}")
    return ", ".join(parts) or "(none)"


def bind(
    factory: Callable | inspect.Signature, spec: Spec, kind: str = "component", **overrides: Any
) -> Spec:
    """Match a parsed spec (plus Python overrides) to the factory's signature (or to a signature).

    Returns the *resolved* spec: every parameter named, typed, defaults filled
    in. ``str()`` of it builds the same thing again; configs store that.
    """
    sig = signature(factory)
    params = [p for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    accepted = f"{spec.name} accepts: {describe_params(factory)}"
    if len(spec.args) > len(params):
        raise SpecError(
            f"{kind} '{spec.name}' takes at most {len(params)} positional value(s), got {len(spec.args)}; {accepted}"
        )
    given: dict[str, Any] = {}
    for param, text in zip(params, spec.args, strict=False):
        given[param.name] = text
    by_name = {p.name: p for p in params}
    for key, value in {**spec.kwargs, **overrides}.items():
        if key not in by_name:
            raise SpecError(f"{kind} '{spec.name}' has no parameter '{key}'; {accepted}")
        if key in given and key in spec.kwargs:
            raise SpecError(f"{kind} '{spec.name}': '{key}' is given both by position and by name")
        given[key] = value
    resolved: dict[str, Any] = {}
    for param in params:
        if param.name in given:
            try:
                resolved[param.name] = coerce(given[param.name], param.annotation, param.default)
            except ValueError as err:
                raise SpecError(
                    f"{kind} '{spec.name}': {param.name}={given[param.name]!r} {err}; {accepted}"
                ) from None
        elif param.default is param.empty:
            raise SpecError(f"{kind} '{spec.name}' needs a value for '{param.name}'; {accepted}")
        else:
            resolved[param.name] = param.default
    return Spec(spec.name, (), resolved)
