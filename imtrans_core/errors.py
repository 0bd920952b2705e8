"""Errors a person can cause and fix.

Anything raised as :class:`ImtransError` is shown by the CLI as one line (no
traceback unless ``--debug``) and exits with status 2. The message must name the
file or option at fault and say what to do about it. :class:`BatchFailed` ends a
batch in which some files failed and the others were done: exit status 1.
"""

from __future__ import annotations


class ImtransError(Exception):
    """A problem with the user's input: a bad spec, file, option or value."""


class BatchFailed(ImtransError):
    """Some files of a batch failed, each for its reason; every other one was done."""

    exit_code = 1

    def __init__(self, failures: list[tuple[str, str]], total: int, done: str = "volume(s)"):
        lines = "".join(
            f"\n  {reason if name in reason else f'{name}: {reason}'}" for name, reason in failures
        )
        super().__init__(f"{len(failures)} of {total} {done} failed; the others were done:{lines}")
        self.failures = failures


def batch_error(failures: list[tuple[str, str]], total: int, done: str = "volume(s)") -> ImtransError:
    """What a batch with ``failures`` ends in: one input's own error (exit 2), else :class:`BatchFailed`."""
    if total == 1:
        name, reason = failures[0]
        return ImtransError(reason if name in reason else f"{name}: {reason}")
    return BatchFailed(failures, total, done)


class SpecError(ImtransError, ValueError):
    """A spec string that does not parse or does not fit its factory."""


class RegistryError(ImtransError, KeyError):
    """An unknown or duplicate registry name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class PluginError(ImtransError):
    """A plugin that cannot be loaded or that conflicts with another."""


class ImtransWarning(UserWarning):
    """Data that look wrong but may be intended: shown to the person, never fatal."""
