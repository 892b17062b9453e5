"""File type from content (magic bytes), never from the name the client sent.

A zip is told apart from docx/xlsx/pptx by the names of its first central-directory entries
(:mod:`ops.zipinfo`), read in small chunks: never by ``zipfile.ZipFile``, which would parse a
hostile directory of a million entries into hundreds of MiB.
"""

from __future__ import annotations

from pathlib import Path

from ops.zipinfo import ZipLayoutError, central_names, find_end, has_end_signature

_MAGIC: tuple[tuple[bytes, int, str, str], ...] = (
    (b"%PDF-", 0, "pdf", "application/pdf"),
    (b"MZ", 0, "pe", "application/vnd.microsoft.portable-executable"),
    (b"\x7fELF", 0, "elf", "application/x-executable"),
    (b"\x89PNG\r\n\x1a\n", 0, "png", "image/png"),
    (b"\xff\xd8\xff", 0, "jpeg", "image/jpeg"),
    (b"GIF87a", 0, "gif", "image/gif"),
    (b"GIF89a", 0, "gif", "image/gif"),
    (b"II*\x00", 0, "tiff", "image/tiff"),
    (b"MM\x00*", 0, "tiff", "image/tiff"),
    (b"\x1f\x8b", 0, "gzip", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", 0, "7z", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", 0, "rar", "application/vnd.rar"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 0, "ole", "application/x-ole-storage"),
    (b"ustar", 257, "tar", "application/x-tar"),
    (b"{\\rtf", 0, "rtf", "application/rtf"),
)
_OOXML = {
    "word/": ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "xl/": ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "ppt/": ("pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
}
HEAD_BYTES = 4096
# Every type :func:`detect` names (what ``docs.metadata`` carries and scanners declare they accept).
KINDS = frozenset(
    {kind for _, _, kind, _ in _MAGIC}
    | {kind for kind, _ in _OOXML.values()}
    | {"zip", "webp", "text", "binary"}
)
ZIP_NAMES_READ = 1000  # an Office document lists its parts well within this many entries
PDF_HEADER_WINDOW = 1024  # PDF readers take a %PDF- header anywhere in the first KiB
ZIP_KINDS = frozenset({"zip", "docx", "xlsx", "pptx"})


def detect(head: bytes, path: Path | None = None) -> tuple[str, str]:
    """``(file_type, mime_type)`` from the first bytes (and the zip directory when needed)."""
    for magic, offset, kind, mime in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return kind, mime
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _zip_kind(path)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp", "image/webp"
    if _looks_like_text(head):
        return "text", "text/plain"
    return "binary", "application/octet-stream"


def also_readable(head: bytes, path: Path | None, file_type: str) -> frozenset[str]:
    """The types other than ``file_type`` that readers find in these bytes: the attacker
    chooses the bytes, so type-based routing must not let a prefix hide a format.

    ``pdf``: a ``%PDF-`` header in the first KiB (junk before it, or a polyglot).  ``zip``: an
    end-of-central-directory signature in the tail, where zip readers look for it (a
    self-extracting executable, anything with a zip appended); the signature alone counts,
    trusted layout or not, since tools more lenient than :mod:`zipfile` still open it."""
    found = set()
    if b"%PDF-" in head[:PDF_HEADER_WINDOW]:
        found.add("pdf")
    if file_type not in ZIP_KINDS and path is not None and _has_zip_end(path):
        found.add("zip")
    return frozenset(found - {file_type})


def _has_zip_end(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return has_end_signature(handle)
    except OSError:
        return False


def _zip_kind(path: Path | None) -> tuple[str, str]:
    if path is not None:
        try:
            names = _first_zip_names(path)
        except (ZipLayoutError, OSError):
            names = []
        if "[Content_Types].xml" in names:
            for prefix, found in _OOXML.items():
                if any(n.startswith(prefix) for n in names):
                    return found
    return "zip", "application/zip"


def _first_zip_names(path: Path) -> list[str]:
    with open(path, "rb") as handle:
        return list(central_names(handle, find_end(handle), ZIP_NAMES_READ))


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return True
    if b"\x00" in head:
        return head.startswith((b"\xff\xfe", b"\xfe\xff"))  # UTF-16 with a BOM
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a multi-byte character cut at the end
    return True
