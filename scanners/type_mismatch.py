"""Type mismatch: the declared extension and content type against what the bytes really are."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from ops.filetype import HEAD_BYTES, detect
from scanners.base import ScanJob, Scanner, Verdict

EXECUTABLE = frozenset({"pe", "elf"})
_OOXML = frozenset({"docx", "xlsx", "pptx"})
_ZIPS = frozenset({"zip"}) | _OOXML
_TEXT = frozenset({"text"})

# Declared extension -> detected types (ops.filetype.detect) that are consistent with it.
# Detection runs with the file's path, so a genuine OOXML file is always "docx"/"xlsx"/"pptx":
# a ".docx" that is a plain zip (no [Content_Types].xml, no word/) is a mismatch. Zip-based
# formats filetype does not tell apart (OpenDocument, epub, jar, apk) accept "zip".
# An extension missing from this table is not checked.
EXTENSIONS: dict[str, frozenset[str]] = {
    "pdf": frozenset({"pdf"}),
    **dict.fromkeys(("doc", "dot", "xls", "xlt", "ppt", "pot", "msg", "msi"), frozenset({"ole"})),
    **dict.fromkeys(("docx", "docm", "dotx", "dotm"), frozenset({"docx"})),
    **dict.fromkeys(("xlsx", "xlsm", "xltx", "xltm"), frozenset({"xlsx"})),
    **dict.fromkeys(("pptx", "pptm", "potx", "ppsx"), frozenset({"pptx"})),
    **dict.fromkeys(("odt", "ods", "odp", "epub", "jar", "apk"), frozenset({"zip"})),
    "zip": _ZIPS,
    **dict.fromkeys(("gz", "tgz"), frozenset({"gzip"})),
    "tar": frozenset({"tar"}),
    "7z": frozenset({"7z"}),
    "rar": frozenset({"rar"}),
    "rtf": frozenset({"rtf"}),
    **dict.fromkeys(
        (
            "txt",
            "csv",
            "tsv",
            "json",
            "xml",
            "html",
            "htm",
            "md",
            "log",
            "yaml",
            "yml",
            "ini",
            "svg",
            "eml",
        ),
        _TEXT,
    ),
    **dict.fromkeys(("jpg", "jpeg", "jpe", "jfif"), frozenset({"jpeg"})),
    "png": frozenset({"png"}),
    "gif": frozenset({"gif"}),
    **dict.fromkeys(("tif", "tiff"), frozenset({"tiff"})),
    "webp": frozenset({"webp"}),
    **dict.fromkeys(("exe", "dll", "sys", "scr", "cpl", "ocx", "efi"), frozenset({"pe"})),
    "so": frozenset({"elf"}),
}

# Declared content type (lower case, parameters dropped) -> consistent detected types.
# Generic types (application/octet-stream, binary/octet-stream) and unknown ones are not checked.
CONTENT_TYPES: dict[str, frozenset[str]] = {
    "application/pdf": frozenset({"pdf"}),
    **dict.fromkeys(
        (
            "application/msword",
            "application/vnd.ms-excel",
            "application/vnd.ms-powerpoint",
            "application/vnd.ms-outlook",
            "application/x-msi",
        ),
        frozenset({"ole"}),
    ),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": frozenset({"docx"}),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": frozenset({"xlsx"}),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": frozenset(
        {"pptx"}
    ),
    **dict.fromkeys(("application/zip", "application/x-zip-compressed"), _ZIPS),
    **dict.fromkeys(("application/gzip", "application/x-gzip"), frozenset({"gzip"})),
    "application/x-tar": frozenset({"tar"}),
    "application/x-7z-compressed": frozenset({"7z"}),
    **dict.fromkeys(("application/vnd.rar", "application/x-rar-compressed"), frozenset({"rar"})),
    **dict.fromkeys(("application/rtf", "text/rtf"), frozenset({"rtf"})),
    **dict.fromkeys(("application/json", "application/xml", "image/svg+xml"), _TEXT),
    **dict.fromkeys(("image/jpeg", "image/pjpeg"), frozenset({"jpeg"})),
    "image/png": frozenset({"png"}),
    "image/gif": frozenset({"gif"}),
    "image/tiff": frozenset({"tiff"}),
    "image/webp": frozenset({"webp"}),
    **dict.fromkeys(
        (
            "application/vnd.microsoft.portable-executable",
            "application/x-msdownload",
            "application/x-dosexec",
        ),
        frozenset({"pe"}),
    ),
    **dict.fromkeys(("application/x-executable", "application/x-elf"), frozenset({"elf"})),
}


class TypeMismatch(Scanner):
    """Flags a file whose bytes are not what its name and declared content type say.

    The type is re-detected here from the file's first bytes (and zip directory) with
    :func:`ops.filetype.detect`, not taken from ``job.file_type``. The extension of
    ``job.file_name`` is checked against :data:`EXTENSIONS`, ``job.content_type`` (any
    ``text/*``, plus the types in :data:`CONTENT_TYPES`) likewise:

    * an executable (PE or ELF) declared as anything that is not an executable is
      ``malicious`` ("executable disguised as document");
    * any other mismatch is ``suspicious``, with the reasons;
    * a consistent declaration, or one the tables do not know (no extension, ``.bin``,
      ``application/octet-stream``), is ``clean``; an empty file is ``clean``.

    Text in a legacy 8-bit encoding (detected as ``binary`` but with no NUL byte in its
    head) counts as text for text extensions.

    Options: ``deadline_s`` (default 10). Only the head is read, so there is no size limit.
    """

    name = "type-mismatch"
    vendor = "IntelliDox"
    version = "1"

    def __init__(self, options: dict[str, str] | None = None) -> None:
        super().__init__(options)
        self.deadline_s = self.option("deadline_s", 10.0, float)

    def signatures_version(self) -> str:
        return f"{len(EXTENSIONS)}ext-{len(CONTENT_TYPES)}mime"

    def scan(self, path: Path, job: ScanJob) -> Verdict:
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
        if not head:
            return Verdict("clean", "empty file: nothing to compare")
        detected, _ = detect(head, path)
        claims = _claims(job)
        mismatches = [
            claim for claim, allowed in claims if not _consistent(detected, allowed, head)
        ]
        if not mismatches:
            checked = ", ".join(claim for claim, _ in claims) or "nothing declared that is known"
            return Verdict("clean", f"content is {detected}; consistent with {checked}")
        declared = " / ".join(mismatches)
        if detected in EXECUTABLE:
            return Verdict(
                "malicious",
                f"executable disguised as document: {declared} declared, "
                f"content is a {detected} executable",
            )
        return Verdict("suspicious", f"{declared} declared, but content is {detected}")


def _claims(job: ScanJob) -> list[tuple[str, frozenset[str]]]:
    """The declarations this engine can check, as (how it was declared, allowed types)."""
    claims: list[tuple[str, frozenset[str]]] = []
    extension = PurePosixPath(job.file_name.replace("\\", "/")).suffix.lower().lstrip(".")
    if extension in EXTENSIONS:
        claims.append((f".{extension}", EXTENSIONS[extension]))
    mime = (job.content_type or "").split(";", 1)[0].strip().lower()
    allowed = CONTENT_TYPES.get(mime)
    if allowed is None and mime.startswith("text/"):
        allowed = _TEXT
    if allowed is not None:
        claims.append((mime, allowed))
    return claims


def _consistent(detected: str, allowed: frozenset[str], head: bytes) -> bool:
    if detected in allowed:
        return True
    return allowed == _TEXT and detected == "binary" and b"\x00" not in head
