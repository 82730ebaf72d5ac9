"""Workers -> master: exact merges, a real master with two workers, and a worker killed mid-run."""

from __future__ import annotations

import itertools
import json
import random
import re
import signal
import time
from pathlib import Path

from locust.rpc.protocol import Message

from locust_aiapi import FailureKind, LLMSummary, Outcome, RequestKind, RequestRecord, TokenSource
from locust_aiapi._distributed import PAYLOAD_KEY, absorb_report, take_report
from locust_aiapi._histogram import LogHistogram
from locust_aiapi._run_state import RunState
from locust_aiapi._workers import WorkerLedger
from locust_aiapi.mock import MockProcess

from ._support import TEST_LOCUSTFILES, mock_stats, start_distributed

COUNTING = TEST_LOCUSTFILES / "counting_chat.py"
QUANTILES = ("p50", "p90", "p95", "p99")


def synthetic_records(count: int, seed: int) -> list[RequestRecord]:
    rng = random.Random(seed)
    records = []
    for i in range(count):
        start = 100.0 + i * 0.01
        ttft = rng.lognormvariate(-1.5, 0.6)
        tokens = rng.randint(2, 300)
        times = [start + ttft + k * rng.uniform(0.01, 0.05) for k in range(tokens)]
        record = RequestRecord(
            name=rng.choice(["chat", "summarise"]),
            kind=RequestKind.CHAT,
            model=rng.choice(["gpt-4.1", "deepseek-v3.2"]),
            streamed=True,
            start_epoch_s=1_800_000_000.0 + i * 0.01,
            start_s=start,
            end_s=times[-1] + 0.002,
            first_token_s=times[0],
            first_content_s=times[0],
            last_token_s=times[-1],
            token_chunk_times_s=times,
            output_tokens=tokens,
            output_tokens_source=TokenSource.USAGE,
            prompt_tokens=rng.randint(5, 50),
        )
        if rng.random() < 0.1:
            record.fail(rng.choice(list(FailureKind)), "injected")
        elif rng.random() < 0.02:
            record.outcome = Outcome.CANCELLED
        records.append(record)
    return records


def over_the_wire(payload: dict[str, object]) -> dict[str, object]:
    """Serialise a worker report the way Locust's RPC does (msgpack) and read it back."""
    message = Message("stats", {PAYLOAD_KEY: payload}, "worker-1")
    return dict(Message.unserialize(message.serialize()).data)


def test_two_workers_merged_equal_one_process_recording_everything() -> None:
    records = synthetic_records(5000, seed=11)
    whole = LLMSummary()
    for record in records:
        whole.add(record)

    ledger = WorkerLedger()
    master = RunState(ledger=ledger)
    workers = [RunState(), RunState()]
    for i, record in enumerate(records):
        worker = workers[i % 2]
        worker.record(record)
        if i % 700 == 0:  # periodic reports, as Locust's stats reporter sends them
            payload = take_report(worker)
            if payload is not None:
                absorb_report(master, f"w{i % 2}", over_the_wire(payload))
    for index, worker in enumerate(workers):
        payload = take_report(worker)
        assert payload is not None
        absorb_report(master, f"w{index}", over_the_wire(payload))
        assert take_report(worker) is None  # everything was shipped once

    merged, expected = master.summary.report_dict(), whole.report_dict()
    for name in ("chat", "summarise"):
        got, want = merged["requests"][name], expected["requests"][name]
        for key in ("count", "successes", "failures", "cancelled", "failures_by_kind", "prompt_tokens"):
            assert got[key] == want[key], key
        assert got["output_tokens"] == want["output_tokens"]
        for metric in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"):
            for q in QUANTILES:
                assert got[metric][q] == want[metric][q], (metric, q)  # bucket counts add exactly
    assert sum(ledger.requests_by_worker.values()) == len(records)
    assert master.summary.by_key.keys() == whole.by_key.keys()
    assert master.goodput.by_name.keys() == {"chat", "summarise"}
    assert sum(point["requests"] for point in master.series.points()["points"]) == sum(
        1 for record in records if record.outcome is not Outcome.CANCELLED
    )


def test_a_malformed_report_is_counted_not_fatal() -> None:
    master = RunState(ledger=WorkerLedger())
    bad_rows = {"format": LLMSummary.FORMAT_VERSION, "rows": [{"name": "x"}]}
    absorb_report(master, "w0", {PAYLOAD_KEY: {"summary": bad_rows}})
    absorb_report(master, "w0", {PAYLOAD_KEY: ["not", "a", "mapping"]})
    absorb_report(master, "w0", {"stats": []})  # a report without our data
    assert master.ledger is not None and master.ledger.rejected_reports == 2 and not master.summary.by_key


def test_a_report_with_one_bad_part_merges_nothing() -> None:
    """A valid summary beside a malformed part, or a histogram of another accuracy: all or nothing."""
    worker, master = RunState(), RunState(ledger=WorkerLedger())
    for record in synthetic_records(50, seed=3):
        worker.record(record)
    payload = over_the_wire(take_report(worker) or {})[PAYLOAD_KEY]
    assert isinstance(payload, dict)
    bad_series = {**payload, "series": {"buckets": {"1": {"requests": "many"}}, "window": [0, 1]}}
    row = payload["summary"]["rows"][0]
    other_accuracy = LogHistogram(0.01).to_dict()
    histograms = {**row["stats"]["histograms"], "ttft_ms": other_accuracy}
    foreign = {**row, "stats": {**row["stats"], "histograms": histograms}}
    bad_histogram = {**payload, "summary": {**payload["summary"], "rows": [foreign]}}
    for bad in (bad_series, bad_histogram):
        absorb_report(master, "w0", {PAYLOAD_KEY: bad})
    assert master.ledger is not None and master.ledger.rejected_reports == 2
    assert not master.summary.by_key and not master.goodput.by_name and not master.series.buckets
    absorb_report(master, "w0", {PAYLOAD_KEY: payload})
    assert master.summary.total.requests == 50


def test_a_worker_that_reports_again_is_no_longer_lost() -> None:
    ledger = WorkerLedger()
    ledger.note_missing({"w1"}, now_s=100.0)
    assert ledger.as_dict(now_s=104.0)["lost_ids"] == ["w1"]
    ledger.note_report("w1", requests=5, now_s=110.0)
    report = ledger.as_dict(now_s=200.0)
    assert report["lost"] == 0 and report["lost_ids"] == []
    assert report["missing_s"] == {"w1": 10.0}
    assert report["requests_by_worker"] == {"w1": 5}


def test_master_and_two_workers_count_exactly_what_the_workers_recorded(tmp_path: Path) -> None:
    with MockProcess(
        ["--ttft-ms", "30", "--itl-ms", "3", "--output-tokens", "8", "--rate-429", "0.05"]
    ) as mock:
        run = start_distributed(COUNTING, tmp_path, mock.url, users=10, run_time="6s")
        code = run.wait()
        served = mock_stats(mock.url)
    master_log = run.log("master")
    assert code == 1, master_log[-3000:]  # 429s are failures
    assert "Traceback" not in master_log + run.log("worker0") + run.log("worker1")
    summary = run.summary
    recorded = run.worker_records()
    assert summary["total"]["count"] == len(recorded) == sum(served["outcomes"].values()) > 100
    by_worker = summary["workers"]["requests_by_worker"]
    assert len(by_worker) == 2 and all(n > 0 for n in by_worker.values())
    assert summary["workers"]["lost"] == 0
    lag = summary["client_lag"]  # kernel stamps on loopback TCP, from each worker
    assert lag["source"] == "kernel" and lag["by_worker"].keys() == by_worker.keys()
    assert sum(row["count"] for row in lag["by_worker"].values()) == lag["client_lag_ms"]["count"] > 0
    rate_limited = sum(1 for r in recorded if r["failure_kind"] == "rate_limited")
    assert summary["total"]["failures_by_kind"] == {"rate_limited": rate_limited}
    assert rate_limited == served["outcomes"]["rate_limited"]
    # the workers' failure details merge into exact counts (messages: one per distinct text, as recorded)
    detail = summary["total"]["failure_details"]["rate_limited"]
    assert detail["status_codes"] == {"429": rate_limited}
    messages = {r["failure_message"] for r in recorded if r["failure_kind"] == "rate_limited"}
    if len(messages) <= 5:
        assert {m["message"] for m in detail["messages"]} == messages and detail["other_messages"] == 0
    # the time series' per-name buckets merge too
    points = summary["timeseries"]["points"]
    by_name = sum(f["requests"] for p in points for f in p["by_name"].values())
    assert by_name == sum(p["requests"] for p in points) > 100
    assert summary["total"]["output_tokens"] == sum(r["output_tokens"] or 0 for r in recorded)
    # the master prints the live line (from the workers' reports) and, last, the LLM summary
    lines = master_log.splitlines()
    live = [i for i, line in enumerate(lines) if re.match(r"LLM 0:0\d/0:06  10 users  ", line)]
    assert live, master_log[-3000:]
    assert not re.search(r"^LLM \d", run.log("worker0") + run.log("worker1"), re.M)
    percentiles = max(i for i, line in enumerate(lines) if "Response time percentiles" in line)
    assert live[0] < percentiles < lines.index("LLM summary (locust-aiapi)")


def test_a_worker_killed_mid_run_is_reported_lost_and_its_reports_kept(tmp_path: Path) -> None:
    with MockProcess(["--ttft-ms", "30", "--itl-ms", "3", "--output-tokens", "8"]) as mock:
        run = start_distributed(COUNTING, tmp_path, mock.url, users=10, run_time="12s")
        time.sleep(7)  # the master waits for both workers, then they report every 3 s
        victim = run.workers[0]
        victim.send_signal(signal.SIGKILL)
        code = run.wait()
    master_log = run.log("master")
    assert code in (0, 1), master_log[-3000:]
    assert "Traceback" not in master_log
    workers = run.summary["workers"]
    assert workers["lost"] == 1, master_log[-3000:]
    by_worker = workers["requests_by_worker"]
    lost_id = workers["lost_ids"][0]
    assert by_worker[lost_id] > 0  # what it reported before it died is kept
    assert run.summary["total"]["count"] == sum(by_worker.values())
    survivor_file = next(
        p for p in tmp_path.glob("requests.*.jsonl") if p.name != f"requests.{victim.pid}.jsonl"
    )
    survivor_id = next(worker for worker in by_worker if worker != lost_id)
    assert len(survivor_file.read_text().splitlines()) == by_worker[survivor_id]
    assert "1 worker(s) lost during the run" in master_log


def test_a_paused_worker_that_comes_back_is_no_longer_lost(tmp_path: Path) -> None:
    """SIGSTOP a worker for longer than Locust's heartbeat timeout, then SIGCONT: its later reports merge
    and it is not listed as lost at the end (the summary says how long it was missing)."""
    with MockProcess(["--ttft-ms", "30", "--itl-ms", "3", "--output-tokens", "8"]) as mock:
        run = start_distributed(COUNTING, tmp_path, mock.url, users=10, run_time="24s")
        time.sleep(6)
        paused = run.workers[0]
        paused.send_signal(signal.SIGSTOP)
        time.sleep(10)
        paused.send_signal(signal.SIGCONT)
        code = run.wait()
    master_log = run.log("master")
    assert code in (0, 1), master_log[-3000:]
    assert "Traceback" not in master_log
    workers = run.summary["workers"]
    assert "was lost" in master_log and "reports again" in master_log, master_log[-3000:]
    assert workers["lost"] == 0 and workers["lost_ids"] == []
    (missing_s,) = workers["missing_s"].values()
    assert 3.0 <= missing_s <= 14.0
    assert run.summary["total"]["count"] == sum(workers["requests_by_worker"].values())


def test_the_requests_jsonl_is_flushed_every_second(tmp_path: Path) -> None:
    """A worker killed with SIGKILL loses at most about a second of its JSONL, not a whole buffer."""
    # one user per worker at ~3 requests/s writes ~1 KB/s: an 8 KB buffer would hold ~8 s of records
    with MockProcess(["--ttft-ms", "300", "--itl-ms", "3", "--output-tokens", "8"]) as mock:
        run = start_distributed(COUNTING, tmp_path, mock.url, users=2, run_time="30s")
        time.sleep(6)
        victim = run.workers[0]
        path = tmp_path / f"requests.{victim.pid}.jsonl"
        samples = []
        for _ in range(4):  # the file on disk grows while the worker runs: it is flushed as it goes
            time.sleep(1.1)
            samples.append(path.stat().st_size)
        victim.send_signal(signal.SIGKILL)
        run.master.terminate()
        run.wait()
    assert all(later > earlier for earlier, later in itertools.pairwise(samples)), samples


def test_when_a_worker_is_lost_the_others_take_its_prompts_over(tmp_path: Path) -> None:
    """Three workers share six prompts of a sequential dataset, two each; once one is killed and the
    master counts it missing, the two left share all six (three each): none goes unsent."""
    names = [f"p{i}" for i in range(6)]
    dataset = tmp_path / "prompts.jsonl"
    dataset.write_text("".join(f'{{"prompt": "question {n}", "name": "{n}"}}\n' for n in names))
    with MockProcess(["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "3"]) as mock:
        run = start_distributed(
            TEST_LOCUSTFILES / "dataset_chat.py", tmp_path, mock.url, users=3, run_time="16s", workers=3,
            master_args=["--ai-dataset", str(dataset)],
        )  # fmt: skip
        time.sleep(6)
        victim = run.workers[0]
        victim.send_signal(signal.SIGKILL)
        killed_s = time.time()
        code = run.wait()
    assert code in (0, 1), run.log("master")[-3000:]
    survivors = [p for p in tmp_path.glob("requests.*.jsonl") if p.name != f"requests.{victim.pid}.jsonl"]
    late = [
        {
            row["name"]
            for row in map(json.loads, path.read_text().splitlines())
            if row["start_time"] > killed_s + 6
        }
        for path in survivors
    ]
    assert len(late) == 2 and [len(sent) for sent in late] == [3, 3], late
    assert late[0] | late[1] == set(names)
