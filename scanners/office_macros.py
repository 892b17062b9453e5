"""VBA and Excel 4 (XLM) macros in Office files, judged by oletools' olevba and mraptor.

olevba (and its ftguess) read some zip parts whole into memory: every part that starts with
the OLE magic, ``[Content_Types].xml`` and ``_rels/.rels``.  A 1 MB .docm whose
vbaProject.bin inflates to 1 GiB took 2 GiB of RSS, so a zip is checked here before olevba
sees it: the directory's real entry count (:mod:`ops.zipinfo`), then the declared and the
actually inflated sizes of the parts olevba would load, streamed and capped.
"""

from __future__ import annotations

import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

from ops import zipinfo
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
OOXML_NAMES_READ = 1000  # where [Content_Types].xml is looked for
LOADED_WHOLE = frozenset({"[Content_Types].xml", "_rels/.rels"})  # besides OLE parts
OFFICE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # all that Office writes
_CHUNK = 1 << 20


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
        with open(path, "rb") as handle:
            names = zipinfo.central_names(handle, zipinfo.find_end(handle), OOXML_NAMES_READ)
            return "[Content_Types].xml" in names
    except (zipinfo.ZipLayoutError, OSError):
        return False


class OfficeMacros(Scanner):
    """oletools' olevba extracts the macros; mraptor's rules judge them.

    Handles OLE files (.doc .xls .ppt .msg, a bare vbaProject.bin), OOXML zips (.docm
    .xlsm .pptm ...), Excel SYLK files with XLM macros, Word 2003 XML, Flat OPC XML and
    MHT "single file web page" documents.  Anything else is ``unsupported``, and so is an
    encrypted document whose macros cannot be seen.  Accepts ``ole``, ``docx``, ``xlsx``,
    ``pptx``, ``zip``, ``text`` and ``binary`` files (never PDFs, executables, images, other
    archives or RTF).

    mraptor flags macro code A (auto-exec: AutoOpen, Document_Open, Workbook_Open,
    Auto_Open ...), W (writes to disk or memory: URLDownloadToFile, SaveToFile, Kill ...)
    and X (executes: Shell, CreateObject, CALL, EXEC ...).  Verdicts:

    * A and X: ``malicious`` (code that runs by itself and starts something);
    * A and W without X (mraptor's SUSPICIOUS): ``suspicious``;
    * macros otherwise (mraptor's "Macro OK"): ``macros_verdict``, default ``clean``,
      with the flags and olevba's suspicious keywords noted in ``result``: plenty of
      business documents carry harmless macros;
    * no macros: ``clean``.

    A zip (whatever the first bytes say: olevba opens anything :mod:`zipfile` accepts) is
    checked first, without trusting its directory: more than ``max_entries`` entries, an
    end record zipfile would misread, a part compressed other than Office does (stored or
    deflated), or a corrupt part olevba would load is ``suspicious``; parts olevba loads
    whole (OLE parts, ``[Content_Types].xml``, ``_rels/.rels``) that expand beyond
    ``max_expanded_size`` in all are ``too_large``.

    Options: ``macros_verdict`` (``clean`` or ``suspicious``), ``max_file_size`` (bytes,
    default 100 MiB: olevba holds the OLE streams and zip parts in memory),
    ``max_expanded_size`` (bytes, default 100 MiB), ``max_entries`` (default 10000),
    ``deadline_s`` (default 60).
    """

    name = "office-macros"
    vendor = "oletools"
    version = "1"
    # What sniff() may recognise: OLE and OOXML (a zip detected without word/, xl/ or ppt/,
    # e.g. Visio, is "zip"), and SYLK, Word 2003 XML, Flat OPC and MHT, which are "text", or
    # "binary" when their first 4 KiB are not UTF-8.
    accepts = frozenset({"ole", "docx", "xlsx", "pptx", "zip", "text", "binary"})

    def __init__(self, options: dict[str, str] | None = None) -> None:
        super().__init__(options)
        self.macros_verdict = self.option("macros_verdict", "clean")
        if self.macros_verdict not in MACRO_VERDICTS:
            raise ValueError(f"office-macros: macros_verdict must be one of {MACRO_VERDICTS}")
        self.max_file_size = self.option("max_file_size", 100 << 20, int)
        self.max_expanded_size = self.option("max_expanded_size", 100 << 20, int)
        self.max_entries = self.option("max_entries", 10_000, int)
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
        if zipfile.is_zipfile(path):  # olevba asks the same question
            refused = self._check_zip(path)
            if refused is not None:
                return refused
        parser = None
        try:
            parser = olevba.VBA_Parser(str(path), relaxed=True)
            return self._judge(parser, kind)
        except olevba.FileOpenError as exc:
            return Verdict("unsupported", f"{kind}: {exc}")
        except MemoryError:
            raise  # the runner treats it as a crash of the engine, not as a verdict
        except Exception as exc:  # olevba and olefile raise many kinds on damaged files
            return Verdict("error", f"{kind}: olevba failed: {type(exc).__name__}: {exc}")
        finally:
            if parser is not None:
                parser.close()

    def _check_zip(self, path: Path) -> Verdict | None:
        """A verdict when olevba must not open this zip; None when it may."""
        try:
            with open(path, "rb") as handle:
                zipinfo.check_entries(handle, self.max_entries)
            with zipfile.ZipFile(path) as archive:
                return self._check_parts(archive)
        except zipinfo.TooManyEntries as exc:
            return Verdict("suspicious", f"zip {exc}: not an Office document; not opened")
        except (zipinfo.ZipLayoutError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
            return Verdict("suspicious", f"corrupt or misleading zip, not opened: {exc}")

    def _check_parts(self, archive: zipfile.ZipFile) -> Verdict | None:
        loaded: list[zipfile.ZipInfo] = []
        for info in archive.infolist():
            if info.compress_type not in OFFICE_METHODS:
                return Verdict(
                    "suspicious",
                    f"{info.filename} uses compression method {info.compress_type}, "
                    "which Office never writes; not opened",
                )
            if not info.flag_bits & 0x1 and _loaded_whole(archive, info):
                loaded.append(info)
        declared = sum(info.file_size for info in loaded)
        if declared > self.max_expanded_size:
            biggest = max(loaded, key=lambda info: info.file_size)
            return Verdict(
                "too_large",
                f"parts olevba loads whole expand to {declared} bytes (largest "
                f"{biggest.filename}: {biggest.file_size}), over office-macros' "
                f"{self.max_expanded_size}",
            )
        for info in loaded:
            _inflate_capped(archive, info)
        return None

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


def _loaded_whole(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    if info.filename in LOADED_WHOLE:
        return True
    with archive.open(info) as part:
        return bool(part.read(len(OLE_MAGIC)) == OLE_MAGIC)


def _inflate_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Inflate a part in chunks, as olevba would read it, checking its CRC and size.

    zipfile stops at the declared size and raises BadZipFile when the CRC then differs, so a
    part that lies about its size is caught here with one chunk in memory.
    """
    inflated = 0
    with archive.open(info) as part:
        while chunk := part.read(_CHUNK):
            inflated += len(chunk)
    if inflated != info.file_size:
        raise zipfile.BadZipFile(
            f"{info.filename} inflates to {inflated} bytes, not the declared {info.file_size}"
        )


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
