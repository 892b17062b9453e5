"""Active content in PDFs: JavaScript, launch actions, embedded files, automatic actions."""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any, BinaryIO

import pypdf
from pypdf.generic import ArrayObject, DictionaryObject, NameObject

from scanners.base import ScanJob, Scanner, Verdict

log = logging.getLogger(__name__)

KEYS = ("JavaScript", "JS", "OpenAction", "Launch", "EmbeddedFile", "AA", "URI")
_KEY_BYTES = {key.encode(): key for key in KEYS}
# a name is "/" then regular characters, up to whitespace or a delimiter (ISO 32000 7.2.2)
_NAME = re.compile(rb"/([^\x00\t\n\x0c\r ()<>\[\]{}/%]*)")
_HEX_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_MAX_NAME = 4096  # a longer "name" is binary noise, not carried over a chunk boundary
HEADER_WINDOW = 1024  # readers accept "%PDF-" anywhere in the first KiB


def decode_name(raw: bytes) -> bytes:
    """``J#61vaScript`` → ``JavaScript``."""
    return _HEX_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


class NameCounter:
    """Counts the watched names in a byte stream fed in chunks of any size."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.escaped: Counter[str] = Counter()  # of those, written with #xx escapes
        self._carry = b""

    def feed(self, chunk: bytes, final: bool = False) -> None:
        data = self._carry + chunk
        self._carry = b""
        for match in _NAME.finditer(data):
            if match.end() == len(data) and not final:
                # the name may go on in the next chunk: count it then
                if len(data) - match.start() <= _MAX_NAME:
                    self._carry = data[match.start() :]
                return
            self._count(match.group(1))

    def _count(self, raw: bytes) -> None:
        key = _KEY_BYTES.get(raw)
        if key is None and b"#" in raw:
            key = _KEY_BYTES.get(decode_name(raw))
            if key is not None:
                self.escaped[key] += 1
        if key is not None:
            self.counts[key] += 1


class PdfActiveContent(Scanner):
    """Counts a PDF's active-content names, in the manner of Didier Stevens' pdfid.

    The raw bytes are read in chunks (never the whole file), counting the names
    ``/JavaScript /JS /OpenAction /Launch /EmbeddedFile /AA /URI``, whole names only
    (``/JSON`` or ``/AAPL:...`` do not count), with ``#xx`` escapes decoded
    (``/J#61vaScript`` is ``/JavaScript``).  Files up to ``deep_max_size`` are also opened
    with pypdf to count the same names inside compressed object streams, which the raw bytes
    do not show.

    Verdicts: ``suspicious`` for any /JavaScript, /JS, /Launch, /EmbeddedFile or /AA
    (``result`` gives the reasons and every count; /OpenAction is named as a reason when the
    file also has JavaScript).  /OpenAction alone (e.g. "open at page 1, fit width") and
    /URI alone (ordinary links) are ``clean``, with the counts in ``result``: links are
    everywhere in business documents, and judging where they point is a URL-reputation
    engine's job, not this one's.  A file without ``%PDF-`` in its first KiB is
    ``unsupported``.  Accepts ``pdf`` files (as ``docs.metadata`` detects them).

    Options: ``chunk_size`` (bytes read at a time, default 1 MiB), ``deep_max_size`` (bytes;
    larger files get the raw scan only; default 20 MiB; 0 turns pypdf off),
    ``max_file_size`` (bytes, default 1 GiB), ``deadline_s`` (default 60).
    """

    name = "pdf-active"
    vendor = "IntelliDox"
    version = "1"
    # A PDF whose %PDF- is not at offset 0 (readers allow up to 1 KiB of junk; a polyglot) is
    # detected as another type, but docs.metadata also_types names pdf: it is sent here too.
    accepts = frozenset({"pdf"})

    def __init__(self, options: dict[str, str] | None = None) -> None:
        super().__init__(options)
        self.chunk_size = max(16, self.option("chunk_size", 1 << 20, int))
        self.deep_max_size = self.option("deep_max_size", 20 << 20, int)
        self.max_file_size = self.option("max_file_size", 1 << 30, int)
        self.deadline_s = self.option("deadline_s", 60.0, float)

    def engine_version(self) -> str:
        return f"{self.version} (pypdf {pypdf.__version__})"

    def signatures_version(self) -> str:
        return "names:" + ",".join(KEYS)

    # -- scanning ---------------------------------------------------------------------------
    def scan(self, path: Path, job: ScanJob) -> Verdict:
        size = max(job.file_size, path.stat().st_size)
        if self.max_file_size is not None and size > self.max_file_size:
            return Verdict("too_large", f"{size} bytes is over pdf-active's {self.max_file_size}")
        counter = NameCounter()
        with open(path, "rb") as handle:
            head = handle.read(HEADER_WINDOW)
            if b"%PDF-" not in head:
                return Verdict("unsupported", "not a PDF: no %PDF- header in the first KiB")
            self._read_all(handle, head, counter)
        notes = []
        if self.deep_max_size > 0 and size <= self.deep_max_size:
            notes.append(self._deep_scan(path, counter))
        return judge(counter, notes)

    def _read_all(self, handle: BinaryIO, head: bytes, counter: NameCounter) -> None:
        chunk = head
        while chunk:
            counter.feed(chunk)
            chunk = handle.read(self.chunk_size)
        counter.feed(b"", final=True)

    def _deep_scan(self, path: Path, counter: NameCounter) -> str:
        """Adds the names found in objects stored inside object streams."""
        try:
            reader = pypdf.PdfReader(path, strict=False)
            if reader.is_encrypted:
                reader.decrypt("")
            numbers = sorted(reader.xref_objStm)
            for number in numbers:
                _count_object(reader.get_object(number), counter, depth=0)
        except Exception as exc:  # pypdf raises many kinds on broken files
            log.info("pdf-active: pypdf could not read %s: %s", path, exc)
            return f"object streams not checked ({type(exc).__name__}: {exc})"
        return f"{len(numbers)} objects in object streams checked"


def _count_object(obj: Any, counter: NameCounter, depth: int) -> None:
    """Counts names among keys and values, without following indirect references."""
    if depth > 32:
        return
    if isinstance(obj, NameObject):
        counter.feed(str(obj).encode("latin-1", "replace"), final=True)
    elif isinstance(obj, DictionaryObject):
        for key, value in obj.items():
            _count_object(NameObject(key), counter, depth + 1)
            _count_object(value, counter, depth + 1)
    elif isinstance(obj, ArrayObject):
        for item in obj:
            _count_object(item, counter, depth + 1)


def judge(counter: NameCounter, notes: list[str]) -> Verdict:
    counts = counter.counts
    reasons = []
    if counts["JavaScript"] or counts["JS"]:
        reasons.append("JavaScript")
        if counts["OpenAction"]:
            reasons.append("OpenAction with JavaScript")
    for key, reason in (
        ("Launch", "Launch action"),
        ("EmbeddedFile", "embedded file"),
        ("AA", "additional (automatic) actions"),
    ):
        if counts[key]:
            reasons.append(reason)
    listed = " ".join(f"/{key}={counts[key]}" for key in KEYS if counts[key])
    escaped = " ".join(f"/{key}={n}" for key, n in counter.escaped.items())
    details = "; ".join(
        filter(None, [listed or "no active content", escaped and f"#xx-escaped: {escaped}", *notes])
    )
    if reasons:
        return Verdict("suspicious", f"{', '.join(reasons)} ({details})")
    return Verdict("clean", details)
