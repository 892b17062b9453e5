"""The ``intellidox`` entry point imports a verb's libraries only for that verb: a scanner host
(``pip install intellidox[scanner]``) runs ``intellidox scanner run`` without Faust, aiohttp or
a database driver.  Each case runs in a fresh interpreter, so that sys.modules is its own."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).parents[2]
SERVER_LIBRARIES = (
    "faust",
    "mode",
    "aiokafka",
    "psycopg",
    "psycopg_pool",
    "cassandra",
    "aiohttp",
    "boto3",
    "grpc",
    "psutil",
    "yaml",
)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _imported_after(code: str) -> list[str]:
    report = "import json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    result = _python(textwrap.dedent(code) + report)
    assert result.returncode == 0, result.stderr[-2000:]
    modules: list[str] = json.loads(result.stdout.splitlines()[-1])
    return modules


def test_scanner_run_imports_no_server_library() -> None:
    modules = _imported_after(
        """
        from ops import cli
        argv = ["scanner", "run", "clamav", "yara", "office-macros", "pdf-active"]
        assert cli.build_parser(argv).parse_args(argv).handler is cli.cmd_scanner
        import scanners.service, scanners.listing  # what the verb imports to run
        """
    )
    assert "scanners.runner" in modules
    assert [m for m in SERVER_LIBRARIES if m in modules] == []


def test_an_operator_verb_imports_only_its_own_module() -> None:
    modules = _imported_after(
        """
        from ops import cli
        cli.build_parser(["upload", "README.md"]).parse_args(["upload", "README.md"])
        """
    )
    assert "ops.upload" in modules
    assert not {"ops.replay", "ops.dlq", "ops.rescan", "ops.trace"} & set(modules)


BLOCK_PSYCOPG = "import sys\nsys.modules['psycopg'] = None  # as on a scanner host\n"


def test_a_verb_whose_library_is_missing_says_which_extra_to_install() -> None:
    result = _python(BLOCK_PSYCOPG + "from ops.cli import main\nraise SystemExit(main(['replay']))")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "this install lacks psycopg" in result.stderr
    assert "'intellidox[server]'" in result.stderr


def test_help_lists_the_verbs_it_cannot_load() -> None:
    result = _python(BLOCK_PSYCOPG + "from ops.cli import main\nmain(['--help'])")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "replay              (not installed here: needs psycopg)" in result.stdout
    assert "upload" in result.stdout
    assert "scanner" in result.stdout
