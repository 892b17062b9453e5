"""The scanner SDK's base class: which file types an engine is asked about."""

from __future__ import annotations

import pytest

from ops.filetype import KINDS
from scanners.archive_inspector import ArchiveInspector
from scanners.base import Scanner, parse_accepts
from scanners.office_macros import OfficeMacros
from scanners.pdf_active import PdfActiveContent
from scanners.registry import ENGINES, build
from scanners.simulated import Simulated


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_every_declared_type_is_one_that_detection_names(name: str) -> None:
    assert ENGINES[name].accepts is None or ENGINES[name].accepts <= KINDS


def test_specialists_accept_their_types_and_the_others_every_type() -> None:
    assert PdfActiveContent.accepts == {"pdf"}
    assert {"ole", "docx", "text"} <= (OfficeMacros.accepts or set())
    assert not {"pdf", "pe", "jpeg", "gzip"} & (OfficeMacros.accepts or set())
    assert ArchiveInspector.accepts == {"zip", "docx", "xlsx", "pptx", "gzip", "tar"}
    specialists = {"pdf-active", "office-macros", "archive-inspector"}
    assert all(e.accepts is None for n, e in ENGINES.items() if n not in specialists)


@pytest.mark.parametrize(
    ("file_type", "taken"), [("pdf", True), ("text", False), ("zip", False), (None, True)]
)
def test_a_scanner_takes_its_types_and_any_document_of_unknown_type(
    file_type: str | None, taken: bool
) -> None:
    assert PdfActiveContent().takes(file_type) is taken
    assert Simulated().takes(file_type) is True


def test_the_accepts_option_replaces_the_declaration_for_one_instance() -> None:
    _, narrowed = build("pdf-zip:simulated?accepts=pdf, zip")
    assert narrowed.accepts == {"pdf", "zip"} and not narrowed.takes("text")
    _, widened = build("pdf-active?accepts=all")
    assert widened.accepts is None and widened.takes("text")
    assert PdfActiveContent.accepts == {"pdf"}  # the class's declaration is untouched


@pytest.mark.parametrize("value", ["pdf,docs", "", ","])
def test_an_accepts_option_that_names_no_known_type_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="is not a file type; known: all, "):
        parse_accepts(value)


def test_the_refusal_says_which_type_and_what_the_scanner_accepts() -> None:
    verdict = Scanner({"accepts": "zip,pdf"}).refusal("sample", "text")
    assert (verdict.verdict, verdict.result) == (
        "unsupported",
        "text is not a type sample accepts (pdf, zip)",
    )
