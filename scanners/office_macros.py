"""VBA and Excel 4 (XLM) macros in Office files, judged by oletools' olevba and mraptor."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import Any

from scanners.base import ScanJob, Scanner, Verdict

with warnings.catch_warnings():
    # olevba calls pyparsing's old camelCase API at import time (PyparsingDeprecationWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from oletools import mraptor, olevba

OLE_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")
SNIFF_BYTES = 64 << 10
# text containers olevba understands, found by a marker in the first 64 KiB
TEXT_MARKERS = (
    (b"http://schemas.microsoft.com/office/word/2003/wordml", "Word 2003 XML"),
    (b"http://schemas.microsoft.com/office/2006/xmlPackage", "Flat OPC XML"),
)
MACRO_VERDICTS = ("clean", "suspicious")


def sniff(path: Path) -> str | None:
    """The Office container ``path`` is, or None: decides ``unsupported`` before olevba.

    olevba itself takes any text file without NUL bytes for VBA source code, so it must
    not see files that are not Office documents.
    """
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if head.startswith(OLE_MAGIC):
        return "OLE"
    if head.startswith(b"PK\x03\x04"):
        return "OOXML" if _is_ooxml(path) else None
    if head.startswith(b"ID;"):
        return "SYLK"
    for marker, kind in TEXT_MARKERS:
        if marker in head:
            return kind
    lower = head.lower()
    if b"mime-version" in lower and b"multipart" in lower:
        return "MHT"
    return None


def _is_ooxml(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return "[Content_Types].xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


class OfficeMacros(Scanner):
    """oletools' olevba extracts the macros; mraptor's rules judge them.

    Handles OLE files (.doc .xls .ppt .msg, a bare vbaProject.bin), OOXML zips (.docm
    .xlsm .pptm ...), Excel SYLK files with XLM macros, Word 2003 XML, Flat OPC XML and
    MHT "single file web page" documents.  Anything else is ``unsupported``, and so is an
    encrypted document whose macros cannot be seen.

    mraptor flags macro code A (auto-exec: AutoOpen, Document_Open, Workbook_Open,
    Auto_Open ...), W (writes to disk or memory: URLDownloadToFile, SaveToFile, Kill ...)
    and X (executes: Shell, CreateObject, CALL, EXEC ...).  Verdicts:

    * A and X: ``malicious`` (code that runs by itself and starts something);
    * A and W without X (mraptor's SUSPICIOUS): ``suspicious``;
    * macros otherwise (mraptor's "Macro OK"): ``macros_verdict``, default ``clean``,
      with the flags and olevba's suspicious keywords noted in ``result``: plenty of
      business documents carry harmless macros;
    * no macros: ``clean``.

    Options: ``macros_verdict`` (``clean`` or ``suspicious``), ``max_file_size`` (bytes,
    default 100 MiB: olevba holds the OLE streams and zip parts in memory), ``deadline_s``
    (default 60).
    """

    name = "office-macros"
    vendor = "oletools"
    version = "1"

    def __init__(self, options: dict[str, str] | None = None) -> None:
        super().__init__(options)
        self.macros_verdict = self.option("macros_verdict", "clean")
        if self.macros_verdict not in MACRO_VERDICTS:
            raise ValueError(f"office-macros: macros_verdict must be one of {MACRO_VERDICTS}")
        self.max_file_size = self.option("max_file_size", 100 << 20, int)
        self.deadline_s = self.option("deadline_s", 60.0, float)

    def engine_version(self) -> str:
        return f"olevba {olevba.__version__}, mraptor {mraptor.__version__}"

    def signatures_version(self) -> str:
        return f"oletools {olevba.__version__}"

    def scan(self, path: Path, job: ScanJob) -> Verdict:
        size = max(job.file_size, path.stat().st_size)
        if self.max_file_size is not None and size > self.max_file_size:
            return Verdict("too_large", f"{size} bytes is over office-macros' {self.max_file_size}")
        kind = sniff(path)
        if kind is None:
            return Verdict("unsupported", "not an Office document olevba can read")
        parser = None
        try:
            parser = olevba.VBA_Parser(str(path), relaxed=True)
            return self._judge(parser, kind)
        except olevba.FileOpenError as exc:
            return Verdict("unsupported", f"{kind}: {exc}")
        except Exception as exc:  # olevba and olefile raise many kinds on damaged files
            return Verdict("error", f"{kind}: olevba failed: {type(exc).__name__}: {exc}")
        finally:
            if parser is not None:
                parser.close()

    def _judge(self, parser: Any, kind: str) -> Verdict:
        if not parser.detect_macros():
            if kind == "OLE" and parser.detect_is_encrypted():
                return Verdict("unsupported", "encrypted OLE document: macros cannot be checked")
            return Verdict("clean", f"{kind}: no macros")
        modules = parser.extract_all_macros()
        code = "\n".join(module[3] for module in modules if isinstance(module[3], str))
        raptor = mraptor.MacroRaptor(code)
        raptor.scan()
        keywords = sorted({keyword for keyword, _ in olevba.detect_suspicious(code)})
        details = (
            f"{kind}: {len(modules)} macro module(s), mraptor flags {raptor.get_flags()}"
            f"{_matches(raptor)}; olevba keywords: {', '.join(keywords) or 'none'}"
        )
        if raptor.autoexec and raptor.execute:
            return Verdict("malicious", f"auto-exec macro that executes ({details})")
        if raptor.suspicious:
            return Verdict("suspicious", f"auto-exec macro that writes ({details})")
        return Verdict(self.macros_verdict, f"macros present, mraptor: Macro OK ({details})")


def _matches(raptor: Any) -> str:
    found = [
        f"{label} {match!r}"
        for label, match in (
            ("auto-exec", raptor.autoexec_match),
            ("write", raptor.write_match),
            ("execute", raptor.execute_match),
        )
        if match
    ]
    return f" ({', '.join(found)})" if found else ""
