"""Fixtures for gateway tests: an API client bound to the test pipeline."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import jsonschema
from pypdf import PdfWriter

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SPEC = json.loads((Path(__file__).parents[2] / "gateway" / "openapi.json").read_text())


def make_pdf(
    pages: int = 3, title: str = "Quarterly report", author: str = "Ada Lovelace"
) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    writer.add_metadata({"/Title": title, "/Author": author})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def conforms(body: Any, schema_name: str) -> None:
    """Check a response body against the OpenAPI spec's component schema."""
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": SPEC["components"]}
    jsonschema.validate(body, schema)
