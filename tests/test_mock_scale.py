"""The mock at scale: thousands of concurrent streams from one process, each chunk on schedule.

Small and bounded (2,000 streams for about five seconds, generous bounds); the 10,000-stream figures
at 20k chunks/s come from ``benchmarks/mock_scale.py``.
"""

from __future__ import annotations

import json
import resource
from pathlib import Path

import pytest

from locust_aiapi.mock import MockProcess
from locust_aiapi.mock._chat_wire import ChatEncoder
from locust_aiapi.mock._limits import WANTED_OPEN_FILES, open_files_warning, raise_open_files_limit
from tests.stream_swarm import ChunkedEvents, SwarmPlan, SwarmProtocolError, run_swarm

STREAMS = 2_000
CHUNKS = 10
ITL_MS = 200.0


def test_two_thousand_concurrent_streams_are_all_served_on_schedule(tmp_path: Path) -> None:
    if raise_open_files_limit() < STREAMS + 100:
        pytest.skip("the open files limit of this process is too low for 2,000 connections")
    record = tmp_path / "record.jsonl"
    timing = ["--ttft-ms", "100", "--itl-ms", str(ITL_MS), "--output-tokens", "1000"]
    with MockProcess([*timing, "--record", str(record)]) as mock:
        plan = SwarmPlan(mock.url, STREAMS, run_time_s=2.0, ramp_s=1.0, itl_ms=ITL_MS, output_tokens=CHUNKS)
        result = run_swarm(plan, grace_s=20.0)
    assert not result.errors
    # an answer lasts 1.9 s and the last connection opens after 1 s: all 2,000 stream at once
    assert result.peak_streaming == STREAMS
    assert result.responses >= STREAMS and result.content_chunks == CHUNKS * result.responses
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(lines) == result.responses
    late_ms = sorted(late / 1000 for line in lines for late in line["chunk_late_us"])
    assert len(late_ms) == result.content_chunks and late_ms[0] >= 0.0
    assert late_ms[len(late_ms) // 2] < 50.0  # generous: a shared 2-core machine; targets are benchmarks'
    gaps_ms = sorted(abs(gap) for gap in result.gap_minus_itl_ms)
    assert gaps_ms[len(gaps_ms) // 2] < 50.0


def test_open_files_limit_is_raised_and_a_low_one_is_reported() -> None:
    soft_before, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert raise_open_files_limit() >= soft_before
    if hard != resource.RLIM_INFINITY:
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
    warning = open_files_warning(1024)
    assert warning is not None and "1024" in warning and "1004 concurrent connections" in warning
    assert open_files_warning(WANTED_OPEN_FILES) is None


@pytest.mark.parametrize("model", ["gpt-4.1", "\x00", '"\x00"'])
@pytest.mark.parametrize("include_usage", [True, False])
def test_fast_content_event_is_byte_identical_to_the_general_encoding(
    model: str, include_usage: bool
) -> None:
    encoder = ChatEncoder(model, include_usage)
    for text in ["", "hi", "\x00", ' "\\', "ü€😀", "\n\r", "a" * 1000]:
        assert encoder.content_event(text) == encoder._chunk({"content": text}, None)


RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    b"6\r\ndata: \r\n" + b"1a\r\n" + b'data: {"delta":{"content":' + b"\r\n" + b"0\r\n\r\n"
)


def _frames(pieces: list[bytes]) -> tuple[list[bytes], bool]:
    parser = ChunkedEvents()
    frames = [frame for piece in pieces for frame in parser.feed(piece)]
    return frames, parser.done


@pytest.mark.parametrize(
    "pieces",
    [[RESPONSE], [RESPONSE[i : i + 1] for i in range(len(RESPONSE))], [RESPONSE + b"HTTP/1.1 200 OK\r\n"]],
    ids=["whole", "byte-by-byte", "trailing-data"],
)
def test_swarm_parser_gives_the_same_frames_however_the_bytes_arrive(pieces: list[bytes]) -> None:
    assert _frames(pieces) == ([b"data: ", b'data: {"delta":{"content":', b""], True)


def test_swarm_parser_rejects_an_error_status() -> None:
    with pytest.raises(SwarmProtocolError):
        ChunkedEvents().feed(b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\n\r\n")
