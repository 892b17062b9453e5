"""The layers of ARCHITECTURE.md hold: `lint-imports` checks the contracts in .importlinter."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_the_import_contracts_are_kept() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(linter), "--config", str(ROOT / ".importlinter"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def _listed(section: str, key: str) -> set[str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / ".importlinter")
    return set(parser[section][key].split())


def test_every_ops_module_has_a_layer() -> None:
    # A module of ops/ in neither list would escape both contracts: say which layer it is.
    foundation = _listed("importlinter:contract:foundation", "source_modules")
    tools = _listed("importlinter:contract:foundation", "forbidden_modules")
    modules = {
        f"ops.{path.stem}" if path.is_file() else f"ops.{path.name}"
        for path in (ROOT / "ops").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    assert modules - foundation - tools == set()
    assert foundation & tools == set()
