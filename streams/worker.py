"""``intellidox worker``: the Faust app with every stage loaded."""

from __future__ import annotations

import sys


def main(log_level: str = "info") -> None:
    from ops.defaults import refuse_repository_defaults
    from ops.settings import get_settings

    refuse_repository_defaults(get_settings(), "worker")  # before connecting anywhere
    from streams.app import app, load_stages

    load_stages()
    sys.argv = ["intellidox-worker", "worker", "-l", log_level]  # Faust reads its own argv
    app.main()
