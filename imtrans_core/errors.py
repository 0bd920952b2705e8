"""Errors a person can cause and fix.

Anything raised as :class:`ImtransError` is shown by the CLI as one line (no
traceback unless ``--debug``) and exits with status 2. The message must name the
file or option at fault and say what to do about it.
"""

from __future__ import annotations


class ImtransError(Exception):
    """A problem with the user's input: a bad spec, file, option or value."""


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
