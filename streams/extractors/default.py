"""The default extractor script: ``extract(path, info) -> dict`` of flat key-values.

``info`` carries what the pipeline already knows: file_name, file_size, file_type, mime_type,
sha256.  This file is the example for teams writing their own script; it runs in a sandboxed
child process, so it may import what it likes from the worker's environment.
"""

from __future__ import annotations

import tarfile
import zipfile
from typing import Any
from xml.etree import ElementTree

TEXT_SAMPLE = 8 << 20  # count lines and words in at most the first 8 MiB


def extract(path: str, info: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {"file_type": info.get("file_type"), "mime_type": info.get("mime_type")}
    handler = _HANDLERS.get(str(info.get("file_type")))
    if handler is not None:
        meta.update(handler(path))
    return meta


def _pdf(path: str) -> dict[str, Any]:
    from pypdf import PdfReader

    reader = PdfReader(path)
    meta: dict[str, Any] = {"pdf_encrypted": reader.is_encrypted}
    if reader.is_encrypted and reader.decrypt("") == 0:
        return meta
    info: Any = reader.metadata or {}
    meta.update(
        {
            "pdf_pages": len(reader.pages),
            "pdf_title": _text(info.get("/Title")),
            "pdf_author": _text(info.get("/Author")),
            "pdf_producer": _text(info.get("/Producer")),
            "pdf_has_javascript": _pdf_has_js(reader),
        }
    )
    return meta


def _pdf_has_js(reader: Any) -> bool:
    root = reader.trailer["/Root"]
    names = root.get("/Names")
    if names is not None and "/JavaScript" in names.get_object():
        return True
    action = root.get("/OpenAction")
    return action is not None and "/JS" in str(action.get_object())


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:500]


def _image(path: str) -> dict[str, Any]:
    from PIL import ExifTags, Image

    with Image.open(path) as image:
        meta: dict[str, Any] = {
            "image_format": image.format,
            "image_width": image.width,
            "image_height": image.height,
        }
        exif = {ExifTags.TAGS.get(k, str(k)): v for k, v in image.getexif().items()}
    meta["exif_camera"] = _text(
        " ".join(str(exif[k]) for k in ("Make", "Model") if k in exif) or None
    )
    meta["exif_datetime"] = _text(exif.get("DateTime"))
    return meta


_CORE = {"dc": "http://purl.org/dc/elements/1.1/"}
_APP = {"ep": "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"}


def _ooxml(path: str) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        meta: dict[str, Any] = {
            "office_has_macros": any(n.endswith("vbaProject.bin") for n in names)
        }
        if "docProps/core.xml" in names:
            core = ElementTree.fromstring(archive.read("docProps/core.xml"))
            meta["office_title"] = _text(core.findtext("dc:title", None, _CORE))
            meta["office_author"] = _text(core.findtext("dc:creator", None, _CORE))
        if "docProps/app.xml" in names:
            app = ElementTree.fromstring(archive.read("docProps/app.xml"))
            pages = app.findtext("ep:Pages", None, _APP)
            meta["office_pages"] = int(pages) if pages and pages.isdigit() else None
        sheets = [n for n in names if n.startswith("xl/worksheets/sheet")]
        if sheets:
            meta["office_sheets"] = len(sheets)
    return meta


def _ole(path: str) -> dict[str, Any]:
    import olefile

    with olefile.OleFileIO(path) as ole:
        props = ole.get_metadata()
        streams = ["/".join(s) for s in ole.listdir()]
    return {
        "office_title": _text(props.title.decode(errors="replace") if props.title else None),
        "office_author": _text(props.author.decode(errors="replace") if props.author else None),
        "office_pages": props.num_pages,
        "office_has_macros": any(
            s.lower().startswith(("macros", "_vba_project", "vba")) for s in streams
        ),
    }


def _plain_text(path: str) -> dict[str, Any]:
    with open(path, "rb") as handle:
        sample = handle.read(TEXT_SAMPLE)
    encoding = "utf-8"
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    text = sample.decode(encoding, errors="replace")
    return {
        "text_encoding": encoding,
        "text_lines": text.count("\n") + (not text.endswith("\n") and bool(text)),
        "text_words": len(text.split()),
    }


def _zip(path: str) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    return {"archive_entries": len(infos), "archive_total_size": sum(i.file_size for i in infos)}


def _tar(path: str) -> dict[str, Any]:
    with tarfile.open(path) as archive:
        members = archive.getmembers()
    return {"archive_entries": len(members), "archive_total_size": sum(m.size for m in members)}


_HANDLERS = {
    "pdf": _pdf,
    "png": _image,
    "jpeg": _image,
    "gif": _image,
    "tiff": _image,
    "webp": _image,
    "docx": _ooxml,
    "xlsx": _ooxml,
    "pptx": _ooxml,
    "ole": _ole,
    "text": _plain_text,
    "zip": _zip,
    "tar": _tar,
}
