"""The console of a real headless run: the live LLM line during it, our summary last, narrow terminals."""

from __future__ import annotations

import json
import re
from pathlib import Path

from locust_aiapi.mock import MockProcess
from locust_aiapi.render.console import render_summary
from locust_aiapi.render.console_extras import render_extras

from ._support import TEST_LOCUSTFILES, headless, run_locust

SHAPED = TEST_LOCUSTFILES / "shaped_chat.py"
LIVE = re.compile(
    r"^LLM (\d+:\d\d)/0:12  (\d+) users  phase ([12])/2(?:: \d users)?  ([\d.]+) req/s  "
    r"TTFT p50/p95 (\d+)/(\d+) ms  (\d+) tok/s  \d+ server_error(?:  lag p99 [\d.]+ ms)?$"
)


def sweep_run(tmp_path: Path, columns: int) -> tuple[str, dict[str, object]]:
    mock_args = ["--ttft-ms", "40", "--itl-ms", "2", "--output-tokens", "8", "--rate-500", "0.1"]
    # 6 s steps: the first live line (at 5 s) falls 1 s inside phase 1, not on its end
    summary_path = tmp_path / "summary.json"
    args = [
        *headless("", 1, "30s", "--stop-timeout", "5"),
        "--ai-steps", "2,4", "--ai-step-duration", "6s", "--ai-summary-json", str(summary_path),
        "--ai-threshold", "ttft_ms:p95<5000", "--ai-threshold", "error_rate<50%",
    ]  # fmt: skip
    with MockProcess(mock_args) as mock:
        args[args.index("--host") + 1] = mock.url
        run = run_locust(SHAPED, tmp_path, args, env={"COLUMNS": str(columns)}, with_reports=False)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout + run.stderr, json.loads(summary_path.read_text())


def test_live_line_during_the_run_and_our_summary_after_locusts_tables_at_80_columns(tmp_path: Path) -> None:
    output, report = sweep_run(tmp_path, 80)
    lines = output.splitlines()
    live = [(index, LIVE.match(line)) for index, line in enumerate(lines) if re.match(r"LLM \d", line)]
    assert len(live) >= 1, output[-3000:]
    assert all(match for _, match in live), [lines[index] for index, _ in live]
    assert all(len(lines[index]) <= 100 for index, _ in live)
    first = live[0][1]
    assert first is not None and first[3] == "1" and int(first[2]) == 2  # phase 1 of 2, at 2 users
    assert float(first[4]) > 5 and 40 <= int(first[5]) <= int(first[6]) < 1000 and int(first[7]) > 0
    assert any(match and match[3] == "2" and int(match[2]) == 4 for _, match in live)
    # Locust's final tables come first; our summary, extras and thresholds are the last lines
    locust_last = max(i for i, line in enumerate(lines) if "Response time percentiles" in line)
    ours = lines.index("LLM summary (locust-aiapi)")
    assert live[0][0] < locust_last < ours
    tail = lines[ours:]
    assert "Per phase (requests by the phase they started in; times in ms)" in tail
    assert not [line for line in tail if "# reqs" in line or line.startswith("[")], tail
    assert [line for line in tail if line][-1] == "  all 2 passed"
    assert re.search(r"PASS  ttft_ms:p95<5000 +measured [\d.]+ ms$", "\n".join(tail), re.M)
    assert re.search(r"PASS  error_rate<50% +measured [\d.]+%$", "\n".join(tail), re.M)
    assert max(len(line) for line in tail) <= 80, max(tail, key=len)
    # the narrow layout stacks the two halves of each table; 120 columns gets them in one line each
    assert sum(1 for line in tail if line.startswith("chat ") and "server_error" not in line) == 2
    wide = (render_summary(report, 120) + render_extras(report, 120)).splitlines()  # type: ignore[arg-type]
    assert max(len(line) for line in wide) <= 120
    assert sum(1 for line in wide if line.startswith("chat ") and "server_error" not in line) == 1
    assert sum(1 for line in wide if line.startswith("2 users")) == 1
