"""``python -m nearspace.cli``: the same as the ``nearspace`` command."""
from nearspace.cli.app import main

main()
