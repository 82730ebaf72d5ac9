"""Prompt sources: distributions, dataset formats (good and broken), synthetic prompts, sharding."""

from __future__ import annotations

import json
import random
import statistics
from collections import Counter
from pathlib import Path

import pytest

from locust_aiapi._datasets import DatasetError, parse_dataset
from locust_aiapi._distributions import parse_distribution
from locust_aiapi._errors import ConfigurationError
from locust_aiapi._options import AIOptions
from locust_aiapi._prompts import (
    ONE_TOKEN_WORDS,
    ConversationScript,
    ListSource,
    Prompt,
    SyntheticSource,
    first_prompt,
)
from locust_aiapi._workload import options_source
from locust_aiapi.mock import MockProcess

from ._support import headless, run_locust, start_distributed

DATASET_CHAT = Path(__file__).parent / "locustfiles" / "dataset_chat.py"


def _samples(spec: str, n: int = 20_000, seed: int = 7) -> list[int]:
    distribution, rng = parse_distribution(spec), random.Random(seed)
    return [distribution.sample(rng) for _ in range(n)]


@pytest.mark.parametrize(
    ("spec", "mean", "sd"),
    [
        ("512", 512.0, 0.0),
        ("uniform:100-1000", 550.0, (901**2 - 1) ** 0.5 / 12**0.5),
        ("normal:512,128", 512.0, 128.0),
        ("lognormal:6,0.5", 2.718281828**6.125, 2.718281828**6.125 * (2.718281828**0.25 - 1) ** 0.5),
        ("choice:128,512,2048", 896.0, statistics.pstdev([128, 512, 2048])),
    ],
)
def test_sampled_moments_are_within_tolerance(spec: str, mean: float, sd: float) -> None:
    samples = _samples(spec)
    assert statistics.fmean(samples) == pytest.approx(mean, rel=0.03)
    assert statistics.pstdev(samples) == pytest.approx(sd, rel=0.05, abs=0.6)
    assert parse_distribution(spec).mean == pytest.approx(mean, rel=1e-6)


def test_the_same_seed_gives_the_same_lengths_and_another_seed_others() -> None:
    assert _samples("lognormal:6,0.7", 200, seed=1) == _samples("lognormal:6,0.7", 200, seed=1)
    assert _samples("lognormal:6,0.7", 200, seed=1) != _samples("lognormal:6,0.7", 200, seed=2)


def test_bounds_of_samples() -> None:
    assert min(_samples("normal:5,50")) == 1  # the negative tail is clipped to one token
    assert set(_samples("uniform:3-5", 500)) == {3, 4, 5}
    assert set(_samples("choice:1,9", 500)) == {1, 9}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("abc", "whole number"),
        ("0", "from 1 to"),
        ("uniform:10", "LOW-HIGH"),
        ("uniform:20-10", "must not exceed"),
        ("normal:512", "two numbers"),
        ("normal:x,1", "two numbers"),
        ("normal:10,-1", "spread"),
        ("lognormal:99,1", "beyond"),
        ("choice:1,,2", "whole number"),
        ("zipf:1", "unknown distribution"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_distribution(spec)


GOOD = {
    ".jsonl": b'{"prompt": "a", "max_tokens": 5, "name": "n1"}\n\n{"messages": [{"role": "user", '
    b'"content": "b"}], "system": "s"}\r\n{"turns": ["c1", "c2"], "system": "s2"}\n',
    ".json": json.dumps(
        [
            {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "x"}]},
            {
                "conversations": [
                    {"from": "system", "value": "s"},
                    {"from": "human", "value": "c1"},
                    {"from": "gpt", "value": "y"},
                    {"from": "human", "value": "c2"},
                ]
            },
        ]
    ).encode(),
    ".csv": b'prompt,max_tokens,name\n"a, with comma",5,n1\nb,,\n',
    ".txt": b"a\r\n\nb\rc\n",
}


def test_jsonl_prompts_messages_and_turns() -> None:
    items = parse_dataset(GOOD[".jsonl"], ".jsonl")
    assert items == [
        Prompt(({"role": "user", "content": "a"},), max_tokens=5, name="n1"),
        Prompt(({"role": "system", "content": "s"}, {"role": "user", "content": "b"})),
        ConversationScript(("c1", "c2"), "s2"),
    ]


def test_sharegpt_replays_the_human_turns() -> None:
    first, second = parse_dataset(GOOD[".json"], ".json")
    assert first == Prompt(({"role": "user", "content": "a"},))
    assert second == ConversationScript(("c1", "c2"), "s")


def test_csv_and_text() -> None:
    csv_items = parse_dataset(GOOD[".csv"], ".csv")
    assert csv_items == [Prompt(({"role": "user", "content": "a, with comma"},), 5, "n1"), Prompt.of("b")]
    assert parse_dataset(GOOD[".txt"], ".txt") == [Prompt.of("a"), Prompt.of("b"), Prompt.of("c")]
    assert parse_dataset("a\u2028b\n".encode(), ".txt") == [Prompt.of("a\u2028b")]  # U+2028 is not a line end


@pytest.mark.parametrize(
    ("suffix", "data", "message"),
    [
        (".jsonl", b'{"prompt": "a"}\n{"prompt": "b"\n', "line 2: not JSON"),
        (".jsonl", b'{"prompt": "a"}\n\n[1]\n', "line 3: expected a JSON object, got list"),
        (".jsonl", b'{"text": "a"}\n', "line 1: needs exactly one of"),
        (".jsonl", b'{"prompt": "a", "messages": []}\n', "line 1: needs exactly one of"),
        (".jsonl", b'{"prompt": ""}\n', "line 1: 'prompt' must be non-empty text"),
        (".jsonl", b'{"prompt": "a", "max_tokens": 0}\n', "line 1: 'max_tokens' must be a whole number"),
        (".jsonl", b'{"prompt": "a", "max_tokens": true}\n', "line 1: 'max_tokens'"),
        (".jsonl", b'{"messages": [{"role": "bot", "content": "x"}]}\n', "line 1: message 1 needs a 'role'"),
        (".jsonl", b'{"messages": [{"role": "system", "content": "x"}]}\n', "no user message"),
        (".jsonl", b'{"turns": []}\n', "'turns' must be a non-empty list"),
        (".jsonl", b"\n\n", "no prompts"),
        (".jsonl", b'{"prompt": "\xff"}\n', "line 1: not UTF-8"),
        (".json", b'{"conversations": []}', "a JSON list of records"),
        (".json", b"[\n{]", "line 2: not JSON"),
        (".json", b'[{"conversations": [{"from": "gpt", "value": "x"}]}]', "record 1: no human turn"),
        (".json", b'[{"conversations": [{"from": "human"}]}]', "record 1: turn 1 needs"),
        (".csv", b"text\na\n", "line 1: the header has no 'prompt' column"),
        (".csv", b"prompt,max_tokens\na,1\nb,x\n", "line 3: 'max_tokens' must be a whole number"),
        (".csv", b"prompt\na,b\n", "line 2: more fields"),
    ],
)
def test_broken_files_name_the_line_and_the_problem(suffix: str, data: bytes, message: str) -> None:
    with pytest.raises(DatasetError, match=message) as caught:
        parse_dataset(data, suffix, "f")
    assert "\n" not in str(caught.value) and str(caught.value).startswith("f")


def test_a_bad_dataset_stops_the_run_at_start_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "ok"}\n{"prompt": 3}\n')
    run = run_locust(
        DATASET_CHAT, tmp_path, headless("http://127.0.0.1:9", 1, "2s", "--ai-dataset", str(path)),
        with_reports=False, timeout_s=60,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr[-2000:]
    assert f"--ai-dataset {path} line 2: 'prompt' must be non-empty text" in run.stderr
    assert "Traceback" not in run.stderr


def test_contradicting_options_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="contradict"):
        options_source(AIOptions(dataset="x.jsonl", prompt_tokens="5"))
    with pytest.raises(ConfigurationError, match="needs --ai-prompt-tokens"):
        options_source(AIOptions(shared_prefix_tokens=5))
    with pytest.raises(ConfigurationError, match="--ai-output-tokens"):
        options_source(AIOptions(prompt_tokens="5", output_tokens="normal:1"))


def test_synthetic_prompts_have_the_length_asked_and_a_shared_prefix() -> None:
    source = SyntheticSource(parse_distribution("uniform:10-50"), parse_distribution("64"), 20, seed=3)
    prompts = [source.next_item() for _ in range(50)]
    assert all(isinstance(p, Prompt) for p in prompts)
    texts = [str(p.messages[0]["content"]) for p in prompts if isinstance(p, Prompt)]
    prefix = texts[0][: 20 * 4]
    for prompt, text in zip(prompts, texts, strict=True):
        assert isinstance(prompt, Prompt) and prompt.max_tokens == 64
        words = [" " + word for word in text.split(" ")[1:]]
        assert len(words) == prompt.requested_prompt_tokens and set(words) <= set(ONE_TOKEN_WORDS)
        assert text.startswith(prefix) and len(text) == 4 * len(words)  # four characters per token
    assert len(set(texts)) == 50
    again = SyntheticSource(parse_distribution("uniform:10-50"), parse_distribution("64"), 20, seed=3)
    assert [again.next_item() for _ in range(50)] == prompts


def test_shards_are_disjoint_deterministic_and_cycle() -> None:
    items = [Prompt.of(str(i)) for i in range(10)]
    source = ListSource(items, "shuffle", seed=5)
    shards = [source.shard(i, 3) for i in range(3)]
    taken = [[shard.next_item() for _ in range(len(shard.items))] for shard in shards]
    sent = sorted(str(first_prompt(p).messages[0]["content"]) for part in taken for p in part)
    assert sent == sorted(map(str, range(10)))
    assert [ListSource(items, "shuffle", seed=5).shard(1, 3).next_item() for _ in range(1)] == taken[1][:1]
    assert shards[0].next_item() == taken[0][0]  # exhausted: it starts again
    # more workers than items: those past the end take one each, in turn (not the whole list)
    few = ListSource(items[:3])
    assert [
        [str(first_prompt(p).messages[0]["content"]) for p in few.shard(i, 5).items] for i in range(5)
    ] == [["0"], ["1"], ["2"], ["0"], ["1"]]
    assert ListSource(items, "shuffle", seed=6).items != source.items
    in_order = [first_prompt(p).messages[0]["content"] for p in ListSource(items).items]
    assert in_order == [str(i) for i in range(10)]


def test_workers_send_disjoint_shares_of_a_dataset(tmp_path: Path) -> None:
    dataset = tmp_path / "prompts.jsonl"
    lines = (json.dumps({"prompt": f"question {i}", "name": f"p{i:04}"}) + "\n" for i in range(2000))
    dataset.write_text("".join(lines))
    with MockProcess(["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "4"]) as mock:
        run = start_distributed(
            DATASET_CHAT, tmp_path, mock.url, users=4, run_time="5s",
            master_args=["--ai-dataset", str(dataset)],
        )  # fmt: skip
        code = run.wait()
    assert code == 0, run.log("master")[-3000:]
    names = [record["name"] for record in run.worker_records()]
    assert len(names) > 40
    duplicates = [name for name, n in Counter(names).items() if n > 1]
    assert not duplicates
    numbers = sorted(int(name[1:]) for name in names)
    assert {n % 2 for n in numbers} == {0, 1}  # both workers took part, each its own half


def test_synthetic_run_records_requested_and_reported_tokens_and_warns_once(tmp_path: Path) -> None:
    with MockProcess(["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "8"]) as mock:
        run = run_locust(
            DATASET_CHAT, tmp_path,
            headless(mock.url, 2, "3s", "--stop-timeout", "3", "--ai-prompt-tokens", "uniform:50-150",
                     "--ai-output-tokens", "200", "--ai-shared-prefix-tokens", "16", "--ai-seed", "4"),
        )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    records = [r for r in run.records if r["outcome"] == "success"]
    assert len(records) > 10
    for record in records:
        assert 66 <= record["requested_prompt_tokens"] <= 166 and record["requested_output_tokens"] == 200
        assert record["prompt_tokens"] == record["requested_prompt_tokens"]  # the mock: 4 characters a token
    requested = run.summary["workload"]["requested"]
    assert requested["requested_prompt_tokens"] == sum(r["requested_prompt_tokens"] for r in records)
    assert requested["short_answers"] == requested["output_requests"] == len(records)
    assert run.stderr.count("answers were much shorter than asked") == 1
