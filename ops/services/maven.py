"""Fetch a Java program's jars from Maven Central into the cache, once.

A throwaway pom lists the artifacts; ``maven-dependency-plugin:copy-dependencies`` copies them
with every transitive dependency into ``<dest>/lib``.  A marker file makes the second call free
(no network, no Maven start).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from ops.services.base import ServiceFailed, require_command

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.intellidox.ops</groupId><artifactId>fetch</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>{deps}</dependencies>
</project>
"""
_DEP = (
    "<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
    "<version>{v}</version></dependency>"
)
_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"


def fetch_jars(dest: Path, artifacts: list[str]) -> Path:
    """Copy ``group:artifact:version`` coordinates and their dependencies to ``dest/lib``."""
    lib = dest / "lib"
    marker = dest / ".complete"
    if marker.exists():
        return lib
    mvn = require_command("mvn", "install Maven: apt-get install -y maven")
    deps = "".join(_DEP.format(g=g, a=a, v=v) for g, a, v in (x.split(":") for x in artifacts))
    lib.mkdir(parents=True, exist_ok=True)
    print(f"[intellidox] fetching {', '.join(artifacts)} from Maven Central (cached after)")
    with tempfile.TemporaryDirectory() as tmp:
        pom = Path(tmp) / "pom.xml"
        pom.write_text(_POM.format(deps=deps))
        argv = [
            mvn,
            "-B",
            "-f",
            str(pom),
            _PLUGIN,
            f"-DoutputDirectory={lib}",
            "-DincludeScope=runtime",
            "-Dorg.slf4j.simpleLogger.log.org.apache.maven.cli.transfer.Slf4jMavenTransferListener=info",
        ]
        if subprocess.run(argv, check=False).returncode != 0:
            raise ServiceFailed(f"Maven could not fetch {artifacts}; see the output above")
    marker.write_text("\n".join(artifacts))
    return lib


def classpath(lib: Path) -> str:
    return ":".join(str(p) for p in sorted(lib.glob("*.jar")))
