"""A factory's signature and docstring read from its source file, without importing it.

Plugins register their factories by reference (``"imtrans_cyclegan.networks:resnet9"``) so that
loading plugins imports no torch. Listing them (``imtrans plugins``) and checking a spec against
them (``--gen resnet9:ngf=x``) need only each factory's parameters, types, defaults and first
docstring line, which the source states: this module reads them with :mod:`ast`. Whatever it
cannot read for certain (a default that is not a literal, an annotation naming something
imported, a class whose ``__init__`` is inherited from another module) makes it answer ``None``,
and the caller imports the factory as before: never a guess.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

_NAMES: dict[str, Any] = {  # what an annotation may name besides the module's own aliases
    **{t.__name__: t for t in (int, float, str, bool, bytes, list, tuple, dict, set)},
    "None": None,
    "Any": typing.Any,
    "Literal": typing.Literal,
    "Optional": typing.Optional,
    "Union": typing.Union,
}


@dataclass(frozen=True)
class Declared:
    signature: inspect.Signature
    doc: str


def declared(reference: str) -> Declared | None:
    """The signature and docstring of ``"package.module:name"`` as its source declares them, or None."""
    module, _, name = reference.partition(":")
    tree, aliases = _parsed(module)
    if tree is None:
        return None
    node = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == name), None
    )
    if isinstance(node, ast.FunctionDef):
        signature = _signature(node, aliases, skip_first=False)
    elif isinstance(node, ast.ClassDef):
        signature = _class_signature(module, node)
    else:
        return None
    return None if signature is None else Declared(signature, ast.get_docstring(node) or "")


_READING: set[str] = set()  # modules being read now: siblings that import each other stop here


@cache
def _parsed(module: str) -> tuple[ast.Module | None, dict[str, Any]]:
    """The module's syntax tree and its type aliases (``GradientOp = Literal[...]``), if its source is at hand."""
    if module in _READING:
        return None, {}
    _READING.add(module)
    try:
        return _read(module)
    finally:
        _READING.discard(module)


def _read(module: str) -> tuple[ast.Module | None, dict[str, Any]]:
    try:
        spec = importlib.util.find_spec(module)  # imports the parent packages, not the module
    except (ImportError, ValueError):
        return None, {}
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None, {}
    try:
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):  # importing it will say what is wrong
        return None, {}
    aliases: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level and node.module:  # a sibling's aliases (Scale)
            sibling = _absolute(module, node)
            theirs = _parsed(sibling)[1] if sibling != module else {}
            aliases.update({a.asname or a.name: theirs[a.name] for a in node.names if a.name in theirs})
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = _annotation(node.value, aliases)
            if value is not _UNKNOWN and _is_type(value):
                aliases[node.targets[0].id] = value
    return tree, aliases


def _class_signature(module: str, node: ast.ClassDef) -> inspect.Signature | None:
    """The ``__init__`` of ``node`` or of its base class, followed through imports; none at all: ()."""
    for _ in range(16):  # a chain of single bases, each in this module or imported by name
        init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        if init is not None:
            return _signature(init, _parsed(module)[1], skip_first=True)
        if not node.bases:
            return inspect.Signature([])
        if len(node.bases) > 1 or not isinstance(node.bases[0], ast.Name):
            return None
        if (node.bases[0].id, _imported_from(module, node.bases[0].id)) in (("object", ""), ("ABC", "abc")):
            return inspect.Signature([])  # object's, and abc.ABC's (a frozen module: no source to read)
        found = _find_class(module, node.bases[0].id)
        if found is None:
            return None
        module, node = found
    return None


def _imported_from(module: str, name: str) -> str:
    """The module ``name`` is imported from at the top of ``module`` ('' when it is not imported)."""
    tree = _parsed(module)[0]
    for node in tree.body if tree is not None else []:
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            return _absolute(module, node)
    return ""


def _find_class(module: str, name: str) -> tuple[str, ast.ClassDef] | None:
    """Where class ``name``, as ``module`` sees it, is defined: that module and its syntax tree."""
    if module == "imtrans_core.api":  # the public API re-exports lazily: follow its table (no torch)
        from . import api

        where = api._WHERE.get(name)
        return _find_class(*where) if where else None
    tree = _parsed(module)[0]
    if tree is None:
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return module, node
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            original = next(a.name for a in node.names if (a.asname or a.name) == name)
            return _find_class(_absolute(module, node), original)
    return None


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute name of the module an ``import from`` in ``module`` reads (relative ones resolved)."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    package = parts if _is_package(module) else parts[:-1]  # what level 1 means here
    package = package[: len(package) - node.level + 1]
    return ".".join([*package, *([node.module] if node.module else [])])


def _is_package(module: str) -> bool:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    return bool(spec and spec.submodule_search_locations)


def _signature(node: ast.FunctionDef, aliases: dict[str, Any], skip_first: bool) -> inspect.Signature | None:
    args = node.args
    if args.posonlyargs or args.vararg or args.kwarg:
        return None
    positional = args.args[1:] if skip_first else args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    params = []
    for arg, default, kind in [
        *((a, d, inspect.Parameter.POSITIONAL_OR_KEYWORD) for a, d in zip(positional, defaults, strict=True)),
        *(
            (a, d, inspect.Parameter.KEYWORD_ONLY)
            for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
        ),
    ]:
        annotation = (
            inspect.Parameter.empty if arg.annotation is None else _annotation(arg.annotation, aliases)
        )
        value = inspect.Parameter.empty if default is None else _literal(default)
        if annotation is _UNKNOWN or value is _UNKNOWN:
            return None
        params.append(inspect.Parameter(arg.arg, kind, default=value, annotation=annotation))
    return inspect.Signature(params)


_UNKNOWN = object()


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        return _UNKNOWN


def _annotation(node: ast.expr, aliases: dict[str, Any]) -> Any:
    """The type an annotation names, evaluated among builtins, typing's forms and the module's aliases."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a quoted annotation
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return _UNKNOWN
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    scope = {**_NAMES, **aliases}
    if not names <= scope.keys() or any(isinstance(n, ast.Attribute | ast.Call) for n in ast.walk(node)):
        return _UNKNOWN
    try:
        return eval(compile(ast.Expression(node), "<annotation>", "eval"), {"__builtins__": {}}, scope)
    except Exception:  # an expression of known names that still does not evaluate: import instead
        return _UNKNOWN


def _is_type(value: Any) -> bool:
    return isinstance(value, type) or typing.get_origin(value) is not None
