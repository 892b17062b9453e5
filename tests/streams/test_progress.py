from streams import progress

DOC = "01a21e2b-1134-7384-8db8-e24c5ec7fb12"


def _request(scanners: dict[str, int], reused: tuple[str, ...] = ()) -> dict[str, object]:
    return {
        "doc_id": DOC,
        "tenant": "t",
        "reused": list(reused),
        "scanners": [{"name": n, "deadline_at": d} for n, d in scanners.items()],
    }


def _verdict(scanner: str) -> dict[str, object]:
    return {"doc_id": DOC, "tenant": "t", "scanner": scanner}


def test_statuses_move_forward_once_each() -> None:
    # 'uploaded' is announced by the gateway itself; the tracker only takes note.
    state, out = progress.on_confirmed(None, {"doc_id": DOC, "tenant": "t"}, 1)
    assert out == [] and state["status"] == "uploaded"
    state, out = progress.on_scan_request(state, _request({"a": 100, "b": 100}), 3)
    assert [(e["status"], e["expected"]) for e in out] == [("in_progress", 2)]
    state, out = progress.on_verdict(state, _verdict("a"), 4)
    assert out == []
    state, out = progress.on_verdict(state, _verdict("b"), 5)
    assert [(e["status"], e["expected"]) for e in out] == [("done", 2)]
    state, out = progress.on_verdict(state, _verdict("b"), 6)  # redelivered
    assert out == [] and state["got"] == ["a", "b"]


def test_verdicts_before_the_request_still_count() -> None:
    state, _ = progress.on_verdict(None, _verdict("a"), 1)
    state, out = progress.on_scan_request(state, _request({"a": 100}), 2)
    assert [e["status"] for e in out] == ["in_progress", "done"]


def test_reused_verdicts_are_expected_without_a_deadline() -> None:
    state, _ = progress.on_scan_request(None, _request({}, reused=("a", "b")), 1)
    assert progress.overdue(state, 10**12) == []
    state, _ = progress.on_verdict(state, _verdict("a"), 2)
    state, out = progress.on_verdict(state, _verdict("b"), 3)
    assert [e["status"] for e in out] == ["done"]


def test_no_scanner_at_all_is_done_with_a_reason() -> None:
    _, out = progress.on_scan_request(None, _request({}), 1)
    assert out[-1]["status"] == "done" and out[-1]["reason"] == "no scanner was registered"


def test_overdue_lists_scanners_past_deadline_once() -> None:
    state, _ = progress.on_scan_request(None, _request({"a": 100, "b": 300}), 1)
    assert progress.overdue(state, 200) == ["a"]
    state["timed_out"].append("a")
    assert progress.overdue(state, 200) == []
    assert progress.overdue(state, 400) == ["b"]


def test_an_unreadable_object_fails_the_document() -> None:
    _, out = progress.on_metadata(
        None, {"doc_id": DOC, "tenant": "t", "failed": True, "error": "gone"}, 1
    )
    assert [(e["status"], e["reason"]) for e in out] == [("failed", "gone")]


def test_states_that_nothing_will_finish_are_forgotten() -> None:
    late, _ = progress.on_verdict(None, _verdict("a"), 1_000)  # after the document was forgotten
    assert not progress.forgettable(late, 2_000, 600_000)
    assert progress.forgettable(late, 1_000 + 3 * 600_000 + 1, 600_000)
    done, _ = progress.on_scan_request(None, _request({}), 1_000)
    assert progress.forgettable(done, 1_000 + 600_001, 600_000)
