"""``python -m imtrans_core`` runs the ``imtrans`` command."""

from .cli import main

main()
