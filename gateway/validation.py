"""Checks on request bodies: each problem is a sentence the client can act on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# ASCII only and matched whole (fullmatch): no trailing newline, no CR/LF, no Unicode digits.
_SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_TOKEN = r"[A-Za-z0-9!#$&^_.+-]+"
_MIME = re.compile(rf"{_TOKEN}/{_TOKEN}(\s*;[ -~]*)?", re.ASCII)
_FIELDS = {"file_name", "file_size", "content_type", "sha256"}


class Invalid(ValueError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UploadRequest:
    file_name: str
    file_size: int
    content_type: str | None
    sha256: str | None


def parse_upload_request(body: dict[str, Any], max_size: int) -> UploadRequest:
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise Invalid(
            f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(_FIELDS))}"
        )
    return UploadRequest(
        file_name=_file_name(body.get("file_name")),
        file_size=_file_size(body.get("file_size"), max_size),
        content_type=_content_type(body.get("content_type")),
        sha256=_sha256(body.get("sha256")),
    )


def _file_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid("file_name is required and must be a non-empty string")
    if len(value) > 255:
        raise Invalid("file_name must be at most 255 characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value) or "/" in value or "\\" in value:
        raise Invalid("file_name must not contain path separators or control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as \ud800 is no text
        raise Invalid("file_name must be valid Unicode text (no lone surrogates)") from None
    return value.strip()


def _file_size(value: Any, max_size: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid("file_size is required and must be an integer number of bytes")
    if value < 0:
        raise Invalid("file_size must not be negative")
    if value > max_size:
        raise Invalid(f"file_size {value} is over the limit of {max_size} bytes (1 GiB)", 413)
    return value


def _content_type(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _MIME.fullmatch(value) or len(value) > 255:
        raise Invalid("content_type must be a MIME type such as application/pdf")
    return value


def _sha256(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _SHA256.fullmatch(value.lower()):
        raise Invalid("sha256 must be 64 hexadecimal characters")
    return value.lower()
