"""The README's "A five-minute tour" runs as written: every command, in order, in an empty folder.

Each ``imtrans ...`` line of the tour's ```bash blocks goes through ``imtrans_core.cli.run`` in a
fresh working directory, so a command that needs a file no earlier command wrote fails here
before it fails for a reader. Only size-like options are shrunk (``SHRINK``); the paths, specs
and everything else are the README's own.
"""

from __future__ import annotations

import glob
import re
import shlex
from pathlib import Path

from imtrans_core.cli import run

README = Path(__file__).resolve().parents[1] / "README.md"
TOUR_HEADING = "## A five-minute tour"

# Lines of the tour's bash blocks that are not tour steps. `imtrans demo` is its own long
# command (the whole job, minutes) with its own tests; the install line and the test suite
# are not imtrans commands.
SKIP = ("pip install", "python -m pytest", "imtrans demo")

# Size-like options rewritten to keep the test to seconds; the README keeps values a reader on
# two cores would use. (option regex, replacement, why). Every row must match at least once,
# so the table cannot silently outlive the commands it was written for.
SHRINK: list[tuple[str, object, str]] = [
    (
        r"(--iters )(\d+)",
        lambda m: f"{m[1]}{max(1, int(m[2]) // 100)}",
        "iterations / 100: 300 -> 3, and a resumed run (400 -> 4) still extends the first",
    ),
    (r"(--n-ct )\d+", r"\g<1>2", "phantom: unpaired CT volumes"),
    (r"(--n-mr )\d+", r"\g<1>2", "phantom: unpaired MR volumes"),
    (r"(n_paired=)\d+", r"\g<1>2", "segment train's phantom spec: labelled subjects"),
]


def tour_section(text: str) -> str:
    start = text.index(TOUR_HEADING)
    end = text.find("\n## ", start + len(TOUR_HEADING))
    return text[start : end if end != -1 else len(text)]


def tour_commands(text: str) -> list[str]:
    """The ``imtrans`` lines of the tour's ```bash blocks: continuations joined, comments dropped."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", tour_section(text), flags=re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith("imtrans ") and not line.startswith(SKIP):
                commands.append(" ".join(line.split()))
    return commands


def shrink(commands: list[str]) -> list[str]:
    """``commands`` with every ``SHRINK`` rewrite applied; a row that matches nothing is an error."""
    out = list(commands)
    for pattern, replacement, why in SHRINK:
        hits = sum(len(re.findall(pattern, c)) for c in out)
        assert hits, f"SHRINK row {pattern!r} ({why}) matches no tour command: update the table"
        out = [re.sub(pattern, replacement, c) for c in out]
    return out


def argv(command: str) -> list[str]:
    """Shell words after ``imtrans``, globs expanded as a shell would (sorted; unmatched kept)."""
    words = shlex.split(command)[1:]
    expanded: list[str] = []
    for word in words:
        matches = sorted(glob.glob(word)) if any(c in word for c in "*?[") else []
        expanded.extend(matches or [word])
    return expanded


def test_tour_commands_are_extracted():
    commands = tour_commands(README.read_text(encoding="utf-8"))
    assert len(commands) >= 8, f"only {len(commands)} commands found in the tour: {commands}"
    steps = {c.split()[1] for c in commands}
    assert {"data", "train", "translate", "evaluate", "export", "segment"} <= steps, steps


def test_tour_error_example_is_what_imtrans_prints(capsys):
    """The tour's one-line error example is the real message (``--dry-run`` so nothing trains)."""
    section = tour_section(README.read_text(encoding="utf-8"))
    match = re.search(r"^\$ (imtrans train --gen resnet6)\n(error: .*)$", section, flags=re.M)
    assert match, "the tour's `$ imtrans train --gen resnet6` example is gone"
    code = run([*argv(match[1]), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == match[2], f"README shows {match[2]!r}, imtrans prints {err.strip()!r}"


def test_tour_runs_in_order_in_an_empty_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IMTRANS_CACHE", str(tmp_path / ".cache"))
    commands = shrink(tour_commands(README.read_text(encoding="utf-8")))
    assert len(commands) >= 8
    for command in commands:
        code = run(argv(command))
        out, err = capsys.readouterr()
        assert code == 0, f"`{command}` exited with {code}:\n{err[-2000:] or out[-2000:]}"
