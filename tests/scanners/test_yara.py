"""The yara engine on samples built here: EICAR, a PE inside a PDF, PDF JavaScript, VBA."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from scanners.base import ScanJob, Verdict
from scanners.yara import RULES_DIR, Yara

# split so that this source file is not itself the EICAR test file's signature
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def job_for(path: Path) -> ScanJob:
    return ScanJob("doc-1", path.name, path.stat().st_size, None, None, "0" * 64)


def scan(engine: Yara, path: Path) -> Verdict:
    return engine.scan(path, job_for(path))


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def tiny_pe() -> bytes:
    """An MZ/PE header as a Microsoft linker lays it out (no code: it never runs)."""
    dos = bytearray(0x80)
    dos[0:2] = b"MZ"
    dos[0x3C:0x40] = struct.pack("<I", 0x80)  # e_lfanew
    dos[0x40:0x4E] = bytes.fromhex("0e1fba0e00b409cd21b8014ccd21")  # the stub's code
    message = b"This program cannot be run in DOS mode.\r\r\n$"
    dos[0x4E : 0x4E + len(message)] = message
    pe = b"PE\0\0" + struct.pack("<HHIIIHH", 0x14C, 0, 0, 0, 0, 0xE0, 0x102)
    return bytes(dos) + pe + b"\0" * 64


def pdf(body: bytes) -> bytes:
    return b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + body + b"\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


PDF_JS_OPEN = pdf(
    b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R /OpenAction 3 0 R >>\nendobj\n"
    b"3 0 obj\n<< /Type /Action /S /JavaScript /JS (app.alert\\('hi'\\);) >>\nendobj\n"
)
OLE_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")


def ole_like(*parts: bytes) -> bytes:
    return OLE_MAGIC + b"\0" * 504 + b"".join(parts) + b"\0" * 64


@pytest.fixture(scope="module")
def engine() -> Yara:
    return Yara()


def test_eicar_is_malicious(engine: Yara, tmp_path: Path) -> None:
    verdict = scan(engine, write(tmp_path, "eicar.com", EICAR + b"\r\n"))
    assert verdict == Verdict("malicious", "eicar.EICAR_Test_File (malicious)")


def test_eicar_quoted_inside_a_document_is_not_the_test_file(engine: Yara, tmp_path: Path) -> None:
    assert scan(engine, write(tmp_path, "note.txt", b"the string is " + EICAR)).verdict == "clean"


def test_pe_embedded_in_a_pdf_is_suspicious(engine: Yara, tmp_path: Path) -> None:
    data = pdf(b"4 0 obj\n<< /Length 300 >>\nstream\n" + tiny_pe() + b"\nendstream\nendobj")
    verdict = scan(engine, write(tmp_path, "invoice.pdf", data))
    assert verdict.verdict == "suspicious"
    assert "embedded_pe.Embedded_PE_In_Document" in verdict.result


def test_pe_embedded_in_an_ole_file_is_suspicious(engine: Yara, tmp_path: Path) -> None:
    verdict = scan(engine, write(tmp_path, "report.doc", ole_like(tiny_pe())))
    assert verdict.verdict == "suspicious"


def test_a_pe_itself_or_a_bare_dos_message_is_not_embedded(engine: Yara, tmp_path: Path) -> None:
    assert scan(engine, write(tmp_path, "tool.exe", tiny_pe())).verdict == "clean"
    text = pdf(b"% This program cannot be run in DOS mode, said the manual")
    assert scan(engine, write(tmp_path, "manual.pdf", text)).verdict == "clean"


def test_pdf_javascript_with_open_action_is_suspicious(engine: Yara, tmp_path: Path) -> None:
    verdict = scan(engine, write(tmp_path, "form.pdf", PDF_JS_OPEN))
    assert verdict == Verdict("suspicious", "pdf_javascript.PDF_JavaScript_AutoAction (suspicious)")


def test_pdf_javascript_on_a_field_event_is_suspicious(engine: Yara, tmp_path: Path) -> None:
    data = pdf(b"5 0 obj\n<< /FT /Tx /AA << /K << /S /JavaScript /JS 6 0 R >> >> >>\nendobj")
    assert scan(engine, write(tmp_path, "field.pdf", data)).verdict == "suspicious"


def test_pdf_without_an_automatic_action_is_clean(engine: Yara, tmp_path: Path) -> None:
    js_only = pdf(b"1 0 obj\n<< /Names << /JavaScript 7 0 R >> >>\nendobj")
    look_alikes = pdf(b"1 0 obj\n<< /AAPL:Keywords [] /JSON (x) /OpenAction [2 0 R /Fit] >>")
    not_pdf = PDF_JS_OPEN[20:]  # no %PDF- header
    for name, data in (("a.pdf", js_only), ("b.pdf", look_alikes), ("c.txt", not_pdf)):
        assert scan(engine, write(tmp_path, name, data)).verdict == "clean", name


def test_office_vba_project_with_auto_exec_is_suspicious(engine: Yara, tmp_path: Path) -> None:
    data = ole_like("_VBA_PROJECT".encode("utf-16-le"), b"\0\0AutoOpen\0\0Shell\0")
    verdict = scan(engine, write(tmp_path, "macro.doc", data))
    assert verdict == Verdict("suspicious", "office_autoexec.Office_AutoExec_Macro (suspicious)")
    data = ole_like("_VBA_PROJECT".encode("utf-16-le"), "Workbook_Open".encode("utf-16-le"))
    assert scan(engine, write(tmp_path, "macro.xls", data)).verdict == "suspicious"


def test_office_without_auto_exec_or_vba_is_clean(engine: Yara, tmp_path: Path) -> None:
    no_auto = ole_like("_VBA_PROJECT".encode("utf-16-le"), b"\0\0Sub Format\0")
    no_vba = ole_like(b"AutoOpen is a word in this text")
    not_office = b"Attribute VB_Name\nSub AutoOpen()\nEnd Sub\n"
    for name, data in (("a.doc", no_auto), ("b.doc", no_vba), ("c.bas", not_office)):
        assert scan(engine, write(tmp_path, name, data)).verdict == "clean", name


def test_clean_and_empty_files(engine: Yara, tmp_path: Path) -> None:
    verdict = scan(engine, write(tmp_path, "plain.txt", b"hello, world\n" * 1000))
    assert verdict.verdict == "clean"
    assert engine.signatures_version() in verdict.result
    assert scan(engine, write(tmp_path, "empty", b"")).verdict == "clean"


def test_too_large_by_size_on_disk_or_by_the_job(tmp_path: Path) -> None:
    engine = Yara({"max_file_size": "100"})
    big = write(tmp_path, "big.pdf", EICAR + b" " * 100)
    assert scan(engine, big).verdict == "too_large"
    small = write(tmp_path, "small.com", EICAR)
    lying_job = ScanJob("doc-2", "small.com", 10_000, None, None, "0" * 64)
    assert engine.scan(small, lying_job).verdict == "too_large"
    assert scan(engine, small).verdict == "malicious"


def test_defaults_and_versions(engine: Yara) -> None:
    assert engine.rules_dir == RULES_DIR
    assert engine.max_file_size == 256 << 20
    assert len(engine.signatures_version()) == 16
    assert engine.signatures_version() == Yara().signatures_version()
    assert engine.engine_version().startswith("4.")


MARKER_RULE = """
rule IntelliDox_Test_Marker {
    meta:
        verdict = "%s"
    strings:
        $m = "INTELLIDOX-%s"
    condition:
        $m
}
"""


def test_rules_recompile_when_the_directory_changes(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    engine = Yara({"rules_dir": str(rules)})
    sample = write(tmp_path, "sample.txt", b"xx INTELLIDOX-MARKER xx")
    before = engine.signatures_version()
    assert scan(engine, sample).verdict == "clean"

    (rules / "marker.yar").write_text(MARKER_RULE % ("malicious", "MARKER"))
    assert scan(engine, sample) == Verdict("malicious", "marker.IntelliDox_Test_Marker (malicious)")
    added = engine.signatures_version()
    assert added != before

    (rules / "marker.yar").write_text(MARKER_RULE % ("suspicious", "OTHER-MARKER"))
    assert scan(engine, sample).verdict == "clean"
    assert engine.signatures_version() not in (before, added)

    (rules / "marker.yar").unlink()
    assert engine.signatures_version() == before


def test_a_broken_rule_file_keeps_the_previous_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    engine = Yara({"rules_dir": str(rules)})
    before = engine.signatures_version()
    (rules / "broken.yar").write_text("rule Broken { condition: nonsense( }")
    assert scan(engine, write(tmp_path, "e.com", EICAR)).verdict == "malicious"
    assert engine.signatures_version() == before
    assert engine._failed is not None  # not retried on every scan until the next change
    (rules / "broken.yar").write_text(MARKER_RULE % ("malicious", "MARKER"))
    assert scan(engine, write(tmp_path, "m.txt", b"INTELLIDOX-MARKER")).verdict == "malicious"


def test_rules_without_verdict_meta_use_the_default(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "plain.yara").write_text('rule Plain { strings: $a = "PLAIN" condition: $a }')
    (rules / "README.txt").write_text("not a rule file")
    sample = write(tmp_path, "s.txt", b"PLAIN")
    assert scan(Yara({"rules_dir": str(rules)}), sample).verdict == "suspicious"
    strict = Yara({"rules_dir": str(rules), "default_verdict": "malicious"})
    assert scan(strict, sample) == Verdict("malicious", "plain.Plain (malicious)")


def test_bad_configuration_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no \.yar"):
        Yara({"rules_dir": str(tmp_path)})
    with pytest.raises(ValueError, match="default_verdict"):
        Yara({"default_verdict": "clean"})


def test_a_vanished_rules_directory_keeps_the_previous_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    engine = Yara({"rules_dir": str(rules)})
    shutil.rmtree(rules)
    assert scan(engine, write(tmp_path, "e.com", EICAR)).verdict == "malicious"
