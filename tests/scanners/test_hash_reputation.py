"""HashReputation: lookups, the shipped list, live reloads and ``verify=1``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from scanners.base import ScanJob
from scanners.hash_reputation import DEFAULT_LIST, HashReputation

# The EICAR test string, assembled so this source file does not itself contain it.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def job_for(sha256: str, size: int = 0) -> ScanJob:
    return ScanJob("doc-1", "upload.bin", size, "binary", "application/octet-stream", sha256)


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "sample.txt"
    path.write_bytes(b"harmless sample\n")
    return path


@pytest.fixture
def bad_list(tmp_path: Path) -> Path:
    path = tmp_path / "known_bad.txt"
    path.write_text(
        "# team list\n"
        "\n"
        f"{sha(b'one').upper()} Trojan.One dropper (ticket #12)\n"
        f"{sha(b'two')} suspicious Adware.Two\n"
        f"{sha(b'three')}\n"
        "not-a-hash malicious Broken line\n"
        f"{sha(b'four')[:40]} malicious Too short\n"
    )
    return path


def test_shipped_list_flags_the_eicar_string(sample: Path) -> None:
    assert len(EICAR) == 68
    assert DEFAULT_LIST.is_file()
    scanner = HashReputation()
    verdict = scanner.scan(sample, job_for(sha(EICAR), 68))
    assert verdict.verdict == "malicious"
    assert "EICAR-Test-File" in verdict.result
    assert scanner.signatures_version().startswith("1-")


def test_unknown_hash_is_clean(sample: Path) -> None:
    verdict = HashReputation().scan(sample, job_for(sha(b"something else")))
    assert verdict.verdict == "clean"


def test_list_format_verdicts_labels_and_bad_lines(bad_list: Path, sample: Path) -> None:
    scanner = HashReputation({"list_path": str(bad_list)})
    one = scanner.scan(sample, job_for(sha(b"one")))
    assert one.verdict == "malicious"
    assert "Trojan.One dropper (ticket #12)" in one.result
    two = scanner.scan(sample, job_for(sha(b"two").upper()))
    assert (two.verdict, "Adware.Two" in two.result) == ("suspicious", True)
    three = scanner.scan(sample, job_for(sha(b"three")))
    assert three.verdict == "malicious"
    assert scanner.signatures_version().startswith("3-")  # the two malformed lines skipped


def test_list_update_is_picked_up_without_a_new_scanner(bad_list: Path, sample: Path) -> None:
    scanner = HashReputation({"list_path": str(bad_list)})
    before = scanner.signatures_version()
    job = job_for(sha(b"five"))
    assert scanner.scan(sample, job).verdict == "clean"

    with open(bad_list, "a") as handle:
        handle.write(f"{sha(b'five')} malicious Worm.Five\n")
    verdict = scanner.scan(sample, job)
    assert (verdict.verdict, "Worm.Five" in verdict.result) == ("malicious", True)
    assert scanner.signatures_version().startswith("4-")
    assert scanner.signatures_version() != before


def test_atomic_replace_of_the_same_size_is_picked_up(tmp_path: Path, sample: Path) -> None:
    listed = tmp_path / "list.txt"
    listed.write_text(f"{sha(b'a')} malicious Label.A\n")
    scanner = HashReputation({"list_path": str(listed)})
    assert scanner.scan(sample, job_for(sha(b"a"))).verdict == "malicious"

    staged = tmp_path / "list.txt.new"
    staged.write_text(f"{sha(b'b')} malicious Label.B\n")  # same size, new inode
    os.replace(staged, listed)
    assert scanner.scan(sample, job_for(sha(b"a"))).verdict == "clean"
    assert scanner.scan(sample, job_for(sha(b"b"))).verdict == "malicious"


def test_a_vanished_list_keeps_the_last_good_one(bad_list: Path, sample: Path) -> None:
    scanner = HashReputation({"list_path": str(bad_list)})
    bad_list.unlink()
    assert scanner.scan(sample, job_for(sha(b"one"))).verdict == "malicious"


def test_a_missing_list_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        HashReputation({"list_path": str(tmp_path / "nope.txt")})


def test_verify_hashes_the_file_itself(tmp_path: Path, bad_list: Path) -> None:
    path = tmp_path / "one.bin"
    path.write_bytes(b"one")
    scanner = HashReputation({"list_path": str(bad_list), "verify": "1"})
    lied = scanner.scan(path, job_for(sha(b"innocent"), 3))
    assert lied.verdict == "malicious"  # the real bytes are on the list

    other = tmp_path / "other.bin"
    other.write_bytes(b"other")
    mismatch = scanner.scan(other, job_for(sha(b"innocent"), 5))
    assert (mismatch.verdict, "mismatch" in mismatch.result) == ("error", True)
    assert scanner.scan(other, job_for(sha(b"other"), 5)).verdict == "clean"


def test_without_verify_the_job_hash_is_trusted(tmp_path: Path, bad_list: Path) -> None:
    path = tmp_path / "one.bin"
    path.write_bytes(b"one")
    scanner = HashReputation({"list_path": str(bad_list)})
    assert scanner.scan(path, job_for(sha(b"innocent"), 3)).verdict == "clean"
    assert scanner.scan(path, job_for("", 3)).verdict == "malicious"  # no hash: computed


def test_options_and_identity() -> None:
    scanner = HashReputation({"verify": "1", "max_file_size": "1000"})
    assert scanner.name == "hash-reputation"
    assert (scanner.verify, scanner.max_file_size, scanner.deadline_s) == (True, 1000, 60.0)
    assert HashReputation().max_file_size is None
