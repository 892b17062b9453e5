"""The built-in sample corpus a script must handle before it is published.

PDF, PNG, JPEG, DOCX, XLSX, text and ZIP, all generated here (pypdf, Pillow, zipfile), so
validation needs no fixture files and every worker and CLI sees the same bytes.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/{main}" ContentType="{mime}"/>'
    '<Override PartName="/docProps/core.xml" '
    'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
    "</Types>"
)
_CORE = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
    'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">'
    "<dc:title>Sample {kind}</dc:title><dc:creator>IntelliDox</dc:creator>"
    "</cp:coreProperties>"
)
_DOCX_BODY = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    "<w:body><w:p><w:r><w:t>Hello from the sample corpus</w:t></w:r></w:p></w:body>"
    "</w:document>"
)
_XLSX_SHEET = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<sheetData><row r="1"><c r="A1"><v>42</v></c></row></sheetData></worksheet>'
)


def pdf(pages: int = 2) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    writer.add_metadata({"/Title": "Sample PDF", "/Author": "IntelliDox"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def image(fmt: str) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 40, 40)).save(out, format=fmt)
    return out.getvalue()


def ooxml(kind: str) -> bytes:
    main, mime, body = {
        "docx": (
            "word/document.xml",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
            _DOCX_BODY,
        ),
        "xlsx": (
            "xl/worksheets/sheet1.xml",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml",
            _XLSX_SHEET,
        ),
    }[kind]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES.format(main=main, mime=mime))
        archive.writestr("docProps/core.xml", _CORE.format(kind=kind.upper()))
        archive.writestr(main, body)
    return out.getvalue()


def text() -> bytes:
    return "Sample text\nwith two lines and some wörds\n".encode()


def plain_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("readme.txt", "inside the zip\n")
        archive.writestr("data/numbers.csv", "a,b\n1,2\n")
    return out.getvalue()


SAMPLES: dict[str, Callable[[], bytes]] = {
    "sample.pdf": pdf,
    "sample.png": lambda: image("PNG"),
    "sample.jpg": lambda: image("JPEG"),
    "sample.docx": lambda: ooxml("docx"),
    "sample.xlsx": lambda: ooxml("xlsx"),
    "sample.txt": text,
    "sample.zip": plain_zip,
}
