"""``--ai-dataset PATH``: prompts and conversations from a file, checked whole at start.

Formats, chosen by the file's extension:

- ``.jsonl``: one object per line with ``prompt`` (text) or ``messages`` (chat messages), and optional
  ``max_tokens``, ``system``, ``name``; or ``turns`` (a list of user texts: a conversation to replay).
- ``.json``: ShareGPT style, a list of records with ``conversations`` (``from``/``value``); the human
  turns are replayed, each answered by the server (the recorded answers are not sent). A record with
  one human turn is a single prompt.
- ``.csv``: a header row with a ``prompt`` column (and optional ``max_tokens``, ``system``, ``name``).
- anything else: plain text, one prompt per non-empty line.

A file that cannot be used raises :class:`DatasetError` with one line: the file, the line (or record)
and what is wrong. Nothing is sent before the whole file is read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from ._prompts import ConversationScript, Prompt, WorkItem

__all__ = ["MAX_DATASET_BYTES", "DatasetError", "load_dataset", "parse_dataset"]

MAX_DATASET_BYTES = 512 * 1024 * 1024
_ROLES = ("system", "user", "assistant", "tool", "developer")
_HUMAN = ("human", "user")
_SYSTEM = ("system",)


class DatasetError(ValueError):
    """The dataset cannot be used; the message names the place and the problem."""


def load_dataset(path: str) -> list[WorkItem]:
    """Every item of the file at ``path`` (raises DatasetError)."""
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > MAX_DATASET_BYTES:
            raise DatasetError(f"{path}: {size} bytes, more than the {MAX_DATASET_BYTES} a dataset may have")
        data = file.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    return parse_dataset(data, file.suffix.lower(), path)


def parse_dataset(data: bytes, suffix: str, where: str = "dataset") -> list[WorkItem]:
    """The items of a dataset's bytes, by format (``.jsonl``, ``.json``, ``.csv`` or text)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DatasetError(f"{where} line {line}: not UTF-8 text") from None
    parsers = {".jsonl": _jsonl, ".json": _sharegpt, ".csv": _csv}
    items = list(parsers.get(suffix, _text)(text, where))
    if not items:
        raise DatasetError(f"{where}: no prompts in it")
    return items


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """Numbered lines, split on \\r\\n, \\r and \\n only (not on U+2028 as str.splitlines would)."""
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        if line.strip():
            yield number, line


def _text(text: str, where: str) -> Iterator[WorkItem]:
    for _number, line in _lines(text):
        yield Prompt.of(line.strip())


def _jsonl(text: str, where: str) -> Iterator[WorkItem]:
    for number, line in _lines(text):
        place = f"{where} line {number}"
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DatasetError(f"{place}: not JSON ({exc.msg})") from None
        yield _record(value, place)


def _record(value: Any, place: str) -> WorkItem:
    if not isinstance(value, dict):
        raise DatasetError(f"{place}: expected a JSON object, got {type(value).__name__}")
    extras = _extras(value, place)
    keys = [key for key in ("prompt", "messages", "turns") if key in value]
    if len(keys) != 1:
        got = ", ".join(keys) or "none"
        raise DatasetError(f"{place}: needs exactly one of 'prompt', 'messages' or 'turns', got {got}")
    if keys[0] == "prompt":
        return Prompt.of(_text_field(value, "prompt", place), extras.pop("system"), **extras)
    if keys[0] == "turns":
        turns = value["turns"]
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) and t for t in turns):
            raise DatasetError(f"{place}: 'turns' must be a non-empty list of texts")
        return ConversationScript(tuple(turns), extras.pop("system"), **extras)
    system = extras.pop("system")
    messages = _messages(value["messages"], place)
    if system:
        messages = ({"role": "system", "content": system}, *messages)
    return Prompt(messages, **extras)


def _extras(value: Mapping[str, Any], place: str) -> dict[str, Any]:
    max_tokens = value.get("max_tokens")
    if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 1):
        raise DatasetError(f"{place}: 'max_tokens' must be a whole number of 1 or more, got {max_tokens!r}")
    extras: dict[str, Any] = {"max_tokens": max_tokens}
    for key in ("system", "name"):
        field = value.get(key)
        if field is not None and not isinstance(field, str):
            raise DatasetError(f"{place}: '{key}' must be text, got {type(field).__name__}")
        extras[key] = field or None
    return extras


def _text_field(value: Mapping[str, Any], key: str, place: str) -> str:
    text = value.get(key)
    if not isinstance(text, str) or not text.strip():
        raise DatasetError(f"{place}: '{key}' must be non-empty text")
    return text


def _messages(messages: Any, place: str) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(messages, list) or not messages:
        raise DatasetError(f"{place}: 'messages' must be a non-empty list")
    for position, message in enumerate(messages, 1):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise DatasetError(f"{place}: message {position} needs a 'role' among {', '.join(_ROLES)}")
        if "content" not in message:
            raise DatasetError(f"{place}: message {position} has no 'content'")
    if not any(message["role"] == "user" for message in messages):
        raise DatasetError(f"{place}: 'messages' has no user message")
    return tuple(messages)


def _sharegpt(text: str, where: str) -> Iterator[WorkItem]:
    try:
        records = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise DatasetError(f"{where} line {exc.lineno}: not JSON ({exc.msg})") from None
    if not isinstance(records, list):
        got = type(records).__name__
        raise DatasetError(f"{where}: a ShareGPT file is a JSON list of records, got {got}")
    for number, record in enumerate(records, 1):
        yield _sharegpt_record(record, f"{where} record {number}")


def _sharegpt_record(record: Any, place: str) -> WorkItem:
    turns = record.get("conversations") if isinstance(record, dict) else None
    if not isinstance(turns, list):
        raise DatasetError(f"{place}: needs a 'conversations' list")
    system, human = None, []
    for position, turn in enumerate(turns, 1):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str) or "from" not in turn:
            raise DatasetError(f"{place}: turn {position} needs 'from' and a text 'value'")
        if turn["from"] in _HUMAN:
            human.append(turn["value"])
        elif turn["from"] in _SYSTEM:
            system = turn["value"]
    if not human:
        raise DatasetError(f"{place}: no human turn")
    name = record.get("name") if isinstance(record.get("name"), str) else None
    if len(human) == 1:
        return Prompt.of(human[0], system, name=name)
    return ConversationScript(tuple(human), system, name)


def _csv(text: str, where: str) -> Iterator[WorkItem]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None or "prompt" not in reader.fieldnames:
        raise DatasetError(f"{where} line 1: the header has no 'prompt' column (got {reader.fieldnames})")
    for row in reader:
        place = f"{where} line {reader.line_num}"
        if None in row:
            raise DatasetError(f"{place}: more fields than the header has")
        values: dict[str, Any] = {k: v for k, v in row.items() if v not in (None, "")}
        if "max_tokens" in values:
            try:
                values["max_tokens"] = int(values["max_tokens"])
            except ValueError:
                got = values["max_tokens"]
                raise DatasetError(f"{place}: 'max_tokens' must be a whole number, got {got!r}") from None
        yield _record(values, place)
