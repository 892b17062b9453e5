"""``intellidox worker``: the Faust app with every stage loaded."""

from __future__ import annotations

import sys

from ops.settings import Settings


def main(settings: Settings, log_level: str = "info") -> None:
    """Run the worker with the settings its command line read (they go to the app)."""
    from ops.defaults import refuse_repository_defaults
    from ops.logs import logging_config, setup_logging

    setup_logging("worker", settings)
    refuse_repository_defaults(settings, "worker")  # before connecting anywhere
    from streams import workdir
    from streams.app import create_app, load_stages

    workdir.use(workdir.choose(settings.extraction_work_dir, settings.max_file_size))
    workdir.remove_dead()  # what workers killed mid-extraction left (on /dev/shm: memory)
    app = create_app(settings)
    load_stages()
    # Faust sets logging up again when the worker starts: JSON lines there too, and no banner.
    app.conf.logging_config = logging_config("worker", settings, log_level.upper())
    sys.argv = ["intellidox-worker", "--quiet", "worker", "-l", log_level]  # Faust's own argv
    app.main()
