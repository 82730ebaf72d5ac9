"""Requested against reported tokens and per-turn statistics: exact merges, a malformed report rejected."""

from __future__ import annotations

import pytest

from locust_aiapi._distributed import PAYLOAD_KEY, absorb_report, take_report
from locust_aiapi._records import RequestKind, RequestRecord
from locust_aiapi._run_state import RunState
from locust_aiapi._workers import WorkerLedger
from locust_aiapi._workload_stats import WorkloadStats
from locust_aiapi.render.workload import console_lines, html_section


def _record(
    turn: int | None, prompt: int, asked_out: int | None, got_out: int, ttft_s: float
) -> RequestRecord:
    record = RequestRecord("chat", RequestKind.CHAT, "m", True, 1000.0, 10.0, end_s=10.0 + 2 * ttft_s)
    record.first_token_s = record.first_content_s = 10.0 + ttft_s
    record.prompt_tokens, record.output_tokens = prompt, got_out
    record.requested_prompt_tokens = prompt - 7 if turn is None else None
    record.requested_output_tokens, record.turn = asked_out, turn
    record.conversation_id = None if turn is None else "c1"
    return record


RECORDS = [
    _record(1, 100, None, 20, 0.1),
    _record(2, 300, None, 20, 0.2),
    _record(2, 320, None, 20, 0.3),
    _record(None, 507, 1024, 50, 0.1),
    _record(None, 507, 1024, 900, 0.1),
]


def test_two_workers_merged_equal_one_process() -> None:
    one = WorkloadStats()
    for record in RECORDS:
        one.add(record)
    master = RunState(ledger=WorkerLedger())
    for client, part in (("w0", RECORDS[:2]), ("w1", RECORDS[2:])):
        worker = RunState()
        for record in part:
            worker.record(record)
        payload = take_report(worker)
        assert payload is not None and take_report(worker) is None  # deltas: the second report is empty
        absorb_report(master, client, {PAYLOAD_KEY: payload})
    assert master.workload.report() == one.report()
    report = one.report()
    assert [row["turn"] for row in report["turns"]] == [1, 2]
    assert report["turns"][1]["count"] == 2 and report["turns"][1]["prompt_tokens"] == 620
    requested = report["requested"]
    assert (requested["requested_prompt_tokens"], requested["reported_prompt_tokens"]) == (1000, 1014)
    assert requested["short_answers"] == 1 and requested["short_answer_warning"] is not None
    assert "ignore_eos" in requested["short_answer_warning"]


def test_a_malformed_workload_part_merges_nothing() -> None:
    master = RunState(ledger=WorkerLedger())
    worker = RunState()
    worker.record(RECORDS[0])
    payload = take_report(worker)
    assert payload is not None
    payload["workload"]["turns"]["0"] = payload["workload"]["turns"]["1"]
    absorb_report(master, "w0", {PAYLOAD_KEY: payload})
    assert master.ledger is not None and master.ledger.rejected_reports == 1
    assert master.summary.total.requests == 0 and master.workload.report()["turns"] == []


def test_no_warning_when_answers_are_as_long_as_asked() -> None:
    stats = WorkloadStats()
    for _ in range(10):
        stats.add(_record(None, 10, 100, 95, 0.1))
    assert stats.report()["requested"]["short_answer_warning"] is None


@pytest.mark.parametrize("render", [console_lines, html_section])
def test_turn_rows_are_rendered(render: object) -> None:
    stats = WorkloadStats()
    for record in RECORDS:
        stats.add(record)
    text = render({"workload": stats.report()})  # type: ignore[operator]
    joined = "\n".join(text) if isinstance(text, list) else text
    assert "much shorter than asked" in joined
    assert ("By conversation turn" in joined) or ("conversation turns" in joined)
    assert "310" in joined  # turn 2: 620 prompt tokens over two requests
