"""pyproject.toml's extras: a scanner host (Linux or Windows) gets neither Faust nor a database
driver, and `dev` (what ops/setup.sh installs) still has everything."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SERVER_ONLY = {
    "faust-streaming",
    "aiokafka",
    "cassandra-driver",
    "psycopg",
    "psycopg-binary",
    "psycopg-pool",
    "aiohttp",
    "boto3",
    "uvloop",
    "grpcio",
}
LINUX = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"}
WINDOWS = {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt"}


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _ours(extras: set[str], platform: dict[str, str]) -> list[Requirement]:
    """Our own requirements for ``intellidox[extras]``, self-references followed."""
    wanted, seen, found = set(extras), set(), [Requirement(r) for r in PROJECT["dependencies"]]
    while wanted - seen:
        extra = (wanted - seen).pop()
        seen.add(extra)
        for text in PROJECT["optional-dependencies"][extra]:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate(platform):
                continue
            if _name(requirement.name) == "intellidox":
                wanted |= requirement.extras
            else:
                found.append(requirement)
    return [r for r in found if not r.marker or r.marker.evaluate(platform)]


def closure(extras: set[str], platform: dict[str, str]) -> set[str]:
    """Every distribution ``pip install intellidox[extras]`` pulls on that platform, from the
    metadata of the versions installed here (offline; dev installs all of them)."""
    todo, names = _ours(extras, platform), set()
    while todo:
        requirement = todo.pop()
        name = _name(requirement.name)
        if name in names:
            continue
        names.add(name)
        try:
            requires = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:  # needed on another platform only: not installed
            continue
        for text in requires:
            child = Requirement(text)
            envs = [{**platform, "extra": e} for e in requirement.extras or {""}]
            if not child.marker or any(child.marker.evaluate(env) for env in envs):
                todo.append(child)
    return names


@pytest.mark.parametrize("platform", [LINUX, WINDOWS], ids=["linux", "windows"])
def test_a_scanner_host_pulls_no_server_library(platform: dict[str, str]) -> None:
    pulled = closure({"scanner"}, platform)
    assert {"confluent-kafka", "yara-python", "oletools", "pypdf"} <= pulled
    assert not pulled & SERVER_ONLY, sorted(pulled & SERVER_ONLY)


def test_dev_installs_every_role_and_the_local_runtime() -> None:
    dev = closure({"dev"}, LINUX)
    everything = {_name(r.name) for r in _ours({"scanner", "server", "local"}, LINUX)}
    assert everything <= dev, sorted(everything - dev)
    assert dev >= SERVER_ONLY
    assert "uvloop" not in closure({"dev"}, WINDOWS)


@pytest.mark.integration  # asks PyPI (the resolver, as a new scanner host would)
@pytest.mark.parametrize("platform", [[], ["--platform", "win_amd64"]], ids=["here", "windows"])
def test_pip_resolves_the_scanner_extra_without_server_libraries(platform: list[str]) -> None:
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", "-"]
    command += ["--ignore-installed", "--python-version", "3.11", "--only-binary=:all:"]
    result = subprocess.run(
        [*command, *platform, f"{ROOT}[scanner]"], capture_output=True, text=True, timeout=240
    )
    if "Could not fetch URL" in result.stderr or "NewConnectionError" in result.stderr:
        pytest.skip(f"PyPI does not answer here: {result.stderr[-300:]}")
    assert result.returncode == 0, result.stderr[-2000:]
    pulled = {_name(i["metadata"]["name"]) for i in json.loads(result.stdout)["install"]}
    assert {"intellidox", "confluent-kafka", "yara-python"} <= pulled
    assert not pulled & SERVER_ONLY, sorted(pulled & SERVER_ONLY)
