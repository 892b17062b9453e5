"""clamd with the shipped signatures, through our own protocol client."""

from __future__ import annotations

import io
import zipfile

import pytest

from ops.clamd import ClamdClient, ClamdError, ScanResult, parse_scan_reply
from ops.settings import Settings

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
MARKER = b"INTELLIDOX-TEST-SIGNATURE-7F3A9C"
PDF_JS = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /OpenAction 2 0 R >> endobj\n"
    b"2 0 obj << /S /JavaScript /JS (app.alert(1)) >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
)


# -- reply parser (no clamd needed) -------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("stream: OK\0", ScanResult(False, None, "stream: OK")),
        (
            "stream: Eicar-Test-Signature FOUND\0",
            ScanResult(True, "Eicar-Test-Signature", "stream: Eicar-Test-Signature FOUND"),
        ),
        (
            "stream: Eicar-Test-Signature(44d88612fea8a8f36de82e1278abb02f:68) FOUND",
            ScanResult(
                True,
                "Eicar-Test-Signature",
                "stream: Eicar-Test-Signature(44d88612fea8a8f36de82e1278abb02f:68) FOUND",
            ),
        ),
        ("1: stream: OK", ScanResult(False, None, "1: stream: OK")),
    ],
)
def test_parse_scan_reply(raw: str, expected: ScanResult) -> None:
    assert parse_scan_reply(raw) == expected


@pytest.mark.parametrize("raw", ["INSTREAM size limit exceeded. ERROR\0", "", "stream: weird"])
def test_parse_scan_reply_errors(raw: str) -> None:
    with pytest.raises(ClamdError):
        parse_scan_reply(raw)


def test_client_needs_an_address() -> None:
    with pytest.raises(ValueError):
        ClamdClient()


# -- the live clamd -----------------------------------------------------------------------------
@pytest.mark.integration
def test_ping_and_version(clamd: ClamdClient) -> None:
    assert clamd.ping()
    assert clamd.version().startswith("ClamAV ")


@pytest.mark.integration
@pytest.mark.parametrize("body", [EICAR, EICAR + b"\n", b"prefix " + EICAR + b" suffix"])
def test_eicar_is_infected(clamd: ClamdClient, body: bytes) -> None:
    result = clamd.scan_bytes(body)
    assert result.infected
    assert result.signature is not None
    assert result.signature.startswith("Eicar-Test-Signature")


@pytest.mark.integration
def test_eicar_inside_a_zip_is_infected(clamd: ClamdClient) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("readme.txt", b"nothing to see")
        zf.writestr("eicar.com", EICAR)
    buf.seek(0)
    result = clamd.instream(buf, chunk=100)  # several chunks
    assert result.infected and (result.signature or "").startswith("Eicar-Test-Signature")


@pytest.mark.integration
def test_clean_file_is_clean(clamd: ClamdClient) -> None:
    clean = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n" * 1000
    assert clamd.scan_bytes(clean) == ScanResult(False, None, "stream: OK")


@pytest.mark.integration
def test_our_test_marker_fires(clamd: ClamdClient) -> None:
    result = clamd.scan_bytes(b"an ordinary letter\n" + MARKER + b"\nregards\n")
    assert result.infected
    assert (result.signature or "").startswith("IntelliDox.Test.Marker-1")


@pytest.mark.integration
def test_pdf_with_javascript_on_open_fires(clamd: ClamdClient) -> None:
    result = clamd.scan_bytes(PDF_JS)
    assert (result.signature or "").startswith("IntelliDox.PDF.JavaScriptOpenAction-1")
    # JavaScript alone (no /OpenAction) is not enough.
    assert not clamd.scan_bytes(PDF_JS.replace(b"/OpenAction 2 0 R ", b"")).infected


@pytest.mark.integration
def test_tcp_socket_works_too(settings: Settings) -> None:
    client = ClamdClient(host=settings.clamd.host, port=settings.clamd.port, timeout=30)
    assert client.ping()
    assert client.scan_bytes(EICAR).infected
