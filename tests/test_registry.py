"""The Registry: register, build, overrides, wildcards, errors with suggestions."""

from __future__ import annotations

import pytest

from imtrans_core import Registry, RegistryError, SpecError
from imtrans_core.errors import ImtransWarning


@pytest.fixture
def gens() -> Registry:
    registry = Registry("generator")
    registry._loader = None  # a bare registry: no plugins

    @registry.register("resnet9")
    def resnet9(ngf: int = 64, n_blocks: int = 9):
        """ResNet generator."""
        return ("resnet", ngf, n_blocks)

    registry.add("unet", lambda base=64: ("unet", base))
    registry.add("resnet18", lambda: "r18")
    return registry


def test_build_with_spec_and_overrides(gens):
    assert gens.build("resnet9") == ("resnet", 64, 9)
    assert gens.build("resnet9:ngf=32,n_blocks=6") == ("resnet", 32, 6)
    assert gens.build("resnet9:32", n_blocks=2) == ("resnet", 32, 2)


def test_names_are_natural_and_wildcarded(gens):
    assert gens.names() == ["resnet9", "resnet18", "unet"]
    assert gens.names("res*") == ["resnet9", "resnet18"]
    assert "unet" in gens and len(gens) == 3


def test_unknown_name_suggests_close_matches(gens):
    with pytest.raises(RegistryError) as info:
        gens.build("resnet6")
    message = str(info.value)
    assert message.startswith("unknown generator 'resnet6'; did you mean resnet9")
    assert "known: resnet9, resnet18, unet" in message


def test_bad_parameter_lists_accepted(gens):
    with pytest.raises(
        SpecError, match=r"generator 'resnet9' has no parameter 'bogus'; resnet9 accepts: ngf=64, n_blocks=9"
    ):
        gens.build("resnet9:bogus=3")


def test_duplicate_is_an_error_naming_both_unless_override(gens):
    with (
        gens.providing("third", "1.0"),
        pytest.raises(RegistryError, match=r"registered twice: by plugin '__main__'.*by plugin 'third'"),
    ):
        gens.add("unet", lambda: None)
    gens.add("unet", lambda: "mine", override=True)
    assert gens.build("unet") == "mine"


def test_an_old_name_builds_what_it_became_warns_and_is_not_listed(gens):
    with gens.providing("mine"):
        gens.alias("resnet", "resnet9")
    assert gens.renamed("resnet") == "resnet9" and gens.renamed("resnet9") is None
    assert gens.aliases() == {"resnet": "resnet9"} and "resnet" not in gens.names()
    with pytest.warns(ImtransWarning, match=r"generator 'resnet' is an old name: it is 'resnet9' now"):
        assert gens.build("resnet:ngf=32") == ("resnet", 32, 9)
    with pytest.warns(ImtransWarning):
        assert str(gens.resolve("resnet")) == str(gens.resolve("resnet9"))


def test_an_old_name_clashing_with_a_name_in_use_names_both_plugins(gens):
    with (
        gens.providing("mine"),
        pytest.raises(RegistryError, match=r"plugin '__main__' already uses that name"),
    ):
        gens.alias("unet", "resnet9")
    with gens.providing("mine"):
        gens.alias("resnet", "resnet9")
    with (
        gens.providing("other"),
        pytest.raises(RegistryError, match=r"plugin 'mine' keeps it as the old name"),
    ):
        gens.add("resnet", lambda: None)
    with gens.providing("other"), pytest.raises(RegistryError, match=r"plugin 'mine' already uses that name"):
        gens.alias("resnet", "unet")


def test_info_describes_the_factory(gens):
    with gens.providing("cyclegan", "0.1.0"):
        gens.add("resnet6", lambda ngf=64: None)
    info = gens.info("resnet9")
    assert info.params == {"ngf": 64, "n_blocks": 9}
    assert info.signature == "ngf=64, n_blocks=9"
    assert info.summary == "ResNet generator."
    assert gens.info("resnet6").plugin == "cyclegan" and gens.info("resnet6").version == "0.1.0"


def test_resolve_fills_defaults(gens):
    resolved = gens.resolve("resnet9:ngf=32")
    assert str(resolved) == "resnet9:ngf=32,n_blocks=9"
    assert gens.build(str(resolved)) == gens.build("resnet9:ngf=32")


def test_factory_spec_errors_name_the_spec(gens):
    def strict(n: int = 1):
        if n < 0:
            raise SpecError("n must be >= 0")
        return n

    gens.add("strict", strict)
    with pytest.raises(SpecError, match=r"generator 'strict:n=-1': n must be >= 0"):
        gens.build("strict:n=-1")


def test_a_bug_inside_a_factory_is_not_disguised_as_a_spec_error(gens):
    """A TypeError from the factory's own code is a bug, not the user's typo: it keeps its type and traceback."""

    def buggy(n: int = 1):
        return len(n)  # TypeError: object of type 'int' has no len()

    gens.add("buggy", buggy)
    with pytest.raises(TypeError, match="has no len") as info:
        gens.build("buggy")
    assert not isinstance(info.value, SpecError)
    assert info.traceback[-1].name == "buggy"


def test_bad_names_are_refused(gens):
    with pytest.raises(RegistryError, match="names are letters"):
        gens.add("has space", lambda: None)


def test_loader_runs_once_on_first_read():
    calls = []
    registry = Registry("metric", loader=lambda: calls.append(1))
    assert registry.names() == [] and registry.names() == []
    assert calls == [1]


def test_signatures_read_from_source_match_the_imported_factories(fresh_plugins):
    """Listing and spec checks read factories from their source; that must be what importing would give."""
    import inspect

    import imtrans_core as ic
    from imtrans_core.declared import declared
    from imtrans_core.spec import signature

    read = set()
    for registry in ic.REGISTRIES.values():
        for name in registry.names():
            target = registry._entries[name].target
            if not isinstance(target, str):
                continue
            found = declared(target)
            real = registry.get(name)
            if found is None:  # not readable for certain: imported instead, never guessed
                continue
            read.add(name)
            assert found.signature.parameters == signature(real).parameters, f"{registry.kind} {name}"
            assert found.doc == inspect.cleandoc(real.__doc__ or ""), f"{registry.kind} {name}"
    assert {
        "resnet9",
        "unet",
        "patchgan",
        "gc",
        "lsgan",
        "paired",
        "mae",
        "ssim",
        "cyclegan",
        "segment",
    } <= read


def test_what_source_reading_cannot_tell_for_certain_is_imported(tmp_path, monkeypatch):
    from imtrans_core.declared import declared

    (tmp_path / "fake_declared.py").write_text(
        "from typing import Literal\n"
        "from os import sep\n"
        "Mode = Literal['a', 'b']\n"
        "def plain(n: int = 3, mode: Mode = 'a', limit: float | None = None):\n    'Plain.'\n"
        "def computed(n: int = 2 * 3):\n    'Computed default.'\n"
        "def foreign(path: sep = 'x'):\n    'Annotation imported from elsewhere.'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    plain = declared("fake_declared:plain")
    assert (
        plain is not None
        and str(plain.signature) == "(n: int = 3, mode: Literal['a', 'b'] = 'a', limit: float | None = None)"
    )
    assert declared("fake_declared:computed") is None and declared("fake_declared:foreign") is None
    assert declared("fake_declared:missing") is None and declared("no_such_module:x") is None
