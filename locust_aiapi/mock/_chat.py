"""`POST /v1/chat/completions`: plan a generation, then play it out on schedule.

Timing model: generation starts when the request body has been read, or when a queued request gets
its slot. Content chunk k is due at start + ttft + itl_1 + … + itl_k (each term with its own jitter),
so `--itl-ms` is the gap between consecutive content chunks whatever `--tokens-per-chunk` is.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from ._capacity import QueueFullError, Slot
from ._chat_timing import cached_prompt_tokens, charge_rate_limits, decode_pace, prefill_delay_s
from ._chat_wire import DONE_EVENT, ChatEncoder, ChatRequest, parse_chat_request
from ._config import MockConfig
from ._errors import rate_limited
from ._exchange import Exchange, ServerState, sleep_until
from ._faults import Fault, choose_fault, raise_error_fault
from ._tokens import sample_tokens
from ._tools import ToolCall, ToolMenu, Wire, tool_arguments

# Stream faults strike after this many content chunks (fewer if the answer is shorter).
FAULT_AFTER_CHUNKS = 3
THINKING_PER_CALL_CHUNKS = 4  # with thinking on, a tool call of this many chunks is thought about in one


@dataclass(frozen=True)
class Generation:
    chunks: list[str]  # text of each content chunk
    chunk_tokens: list[int]  # tokens in each content chunk
    offsets_s: list[float]  # when each chunk is due, in seconds after generation start
    finish_reason: str  # "stop", "length", or "tool_calls" for a whole call
    tool_call: ToolCall | None = None  # the answer calls this tool; its chunks are the arguments' text

    @property
    def completion_tokens(self) -> int:
        return sum(self.chunk_tokens)


def plan_generation(config: MockConfig, rng: random.Random, max_tokens: int | None) -> Generation:
    jitter = config.output_tokens_jitter
    wanted = max(1, config.output_tokens + (rng.randint(-jitter, jitter) if jitter else 0))
    count = wanted if max_tokens is None else min(wanted, max_tokens)
    chunks, chunk_tokens = _token_chunks(sample_tokens(rng, count), config.tokens_per_chunk)
    return Generation(
        chunks=chunks,
        chunk_tokens=chunk_tokens,
        offsets_s=_schedule(config, rng, len(chunks)),
        finish_reason="length" if count < wanted else "stop",
    )


def plan_answer(
    config: MockConfig, rng: random.Random, max_tokens: int | None, tools: ToolMenu | None, wire: Wire
) -> Generation:
    """A tool call when the request offers tools and one is due (see ``_tools``), else text. Draws from
    ``rng`` for the call only when tools are offered: a seeded run without tools is as before."""
    if tools is not None and (tools.forced or rng.random() < config.tool_call_rate):
        return _plan_tool_call(config, rng, max_tokens, tools, wire)
    return plan_generation(config, rng, max_tokens)


def _plan_tool_call(
    config: MockConfig, rng: random.Random, max_tokens: int | None, tools: ToolMenu, wire: Wire
) -> Generation:
    """The call's arguments stream in pieces of ``--tokens-per-chunk`` tokens (4 characters each);
    ``max_tokens`` cuts them short, as a real model's call is cut (finish ``length``)."""
    call, schema = tools.pick(rng, wire)
    chunks, chunk_tokens, finish_reason = _argument_chunks(
        config, tool_arguments(schema, rng), max_tokens, "tool_calls"
    )
    return Generation(
        chunks=chunks,
        chunk_tokens=chunk_tokens,
        offsets_s=_schedule(config, rng, len(chunks)),
        finish_reason=finish_reason,
        tool_call=call,
    )


def think_before_call(
    config: MockConfig, rng: random.Random, call: Generation, max_tokens: int | None
) -> tuple[Generation, int]:
    """``call`` (a tool call's generation) after thinking about it: a quarter as many chunks of thinking
    as the call has (at least one) first, on one schedule with the call's. Thinking counts within
    ``max_tokens``, as the API counts it: when both do not fit, the call is cut (finish ``length``).
    Returns it and the number of thinking chunks."""
    count = max(1, len(call.chunks) // THINKING_PER_CALL_CHUNKS) * config.tokens_per_chunk
    if max_tokens is not None:
        count = max(1, min(count, max_tokens - 1))  # at least a token of thinking, and one for the call
    thinking, thinking_tokens = _token_chunks(sample_tokens(rng, count), config.tokens_per_chunk)
    left = None if max_tokens is None else max_tokens - count
    pieces, piece_tokens, finish_reason = _argument_chunks(
        config, "".join(call.chunks), left, call.finish_reason
    )
    chunks = [*thinking, *pieces]
    generation = Generation(
        chunks=chunks,
        chunk_tokens=thinking_tokens + piece_tokens,
        offsets_s=_schedule(config, rng, len(chunks)),
        finish_reason=finish_reason,
        tool_call=call.tool_call if pieces else None,  # no room left for the call: it thought, then stopped
    )
    return generation, len(thinking)


def _token_chunks(tokens: list[str], step: int) -> tuple[list[str], list[int]]:
    """Sampled tokens in chunks of ``step`` (``--tokens-per-chunk``), and the tokens of each."""
    starts = range(0, len(tokens), step)
    return ["".join(tokens[start : start + step]) for start in starts], [
        min(step, len(tokens) - start) for start in starts
    ]


def _argument_chunks(
    config: MockConfig, arguments: str, max_tokens: int | None, finish_reason: str
) -> tuple[list[str], list[int], str]:
    """A call's arguments in pieces of ``--tokens-per-chunk`` tokens (4 characters each), the tokens of
    each, and the finish: ``max_tokens`` cuts them short, as a real model's call is cut (``length``)."""
    if max_tokens is not None and len(arguments) > 4 * max_tokens:
        arguments, finish_reason = arguments[: 4 * max(0, max_tokens)], "length"
    step = 4 * config.tokens_per_chunk
    chunks = [arguments[start : start + step] for start in range(0, len(arguments), step)]
    return chunks, [-(-len(chunk) // 4) for chunk in chunks], finish_reason


def _schedule(config: MockConfig, rng: random.Random, chunk_count: int) -> list[float]:
    offset_ms = _jittered(rng, config.ttft_ms, config.ttft_jitter_ms)
    offsets_s = [offset_ms / 1000]
    for _ in range(chunk_count - 1):
        offset_ms += _jittered(rng, config.itl_ms, config.itl_jitter_ms)
        offsets_s.append(offset_ms / 1000)
    return offsets_s


def _jittered(rng: random.Random, base_ms: float, jitter_ms: float) -> float:
    if not jitter_ms:
        return base_ms
    return max(0.0, base_ms + rng.uniform(-jitter_ms, jitter_ms))


def serve_chat(state: ServerState, exchange: Exchange) -> None:
    serve_chat_with(state, exchange, parse_chat_request(exchange.request.body), ChatEncoder)


def serve_chat_with(
    state: ServerState, exchange: Exchange, chat: ChatRequest, encoder_type: type[ChatEncoder]
) -> None:
    """Chat completions with ``encoder_type``'s spelling of the events (Azure adds its filter results)."""
    exchange.record.prompt_tokens = chat.prompt_tokens
    fault = choose_fault(state.config, exchange.rng, exchange.request.headers, streaming=chat.stream)
    exchange.record.fault = None if fault is None else fault.value
    raise_error_fault(state.config, fault)
    charge_rate_limits(state, chat)
    generation = plan_answer(state.config, exchange.rng, chat.max_tokens, chat.tools, "chat")
    cached_tokens = cached_prompt_tokens(state, exchange.request.body, chat)
    prefill_s = prefill_delay_s(state, chat, cached_tokens)
    if prefill_s:
        generation = replace(generation, offsets_s=[t + prefill_s for t in generation.offsets_s])
    with admit(state) as slot:
        encoder = encoder_type(chat.model, chat.include_usage if chat.stream else False)
        encoder.cached_tokens = cached_tokens
        encoder.tool_call = generation.tool_call
        if chat.stream:
            _stream(exchange, encoder, chat, generation, slot, fault, decode_pace(state))
        else:
            _complete(exchange, encoder, chat, generation, slot, decode_pace(state)())


def admit(state: ServerState) -> Slot:
    try:
        return state.capacity.admit()
    except QueueFullError:
        message = "The server is overloaded: all generation slots are busy and the queue is full."
        raise rate_limited(message, state.config.retry_after_s) from None


def _complete(
    exchange: Exchange,
    encoder: ChatEncoder,
    chat: ChatRequest,
    generation: Generation,
    slot: Slot,
    pace: float = 1.0,
) -> None:
    start_s = max(exchange.request.received_s, slot.wait())
    first_s = generation.offsets_s[0]
    sleep_until(start_s + first_s + (generation.offsets_s[-1] - first_s) * pace)
    tokens = generation.completion_tokens
    body = encoder.completion(
        "".join(generation.chunks), generation.finish_reason, chat.prompt_tokens, tokens
    )
    exchange.send_json(200, body, first_token=True)
    exchange.record.completion_tokens = tokens


def _stream(
    exchange: Exchange,
    encoder: ChatEncoder,
    chat: ChatRequest,
    generation: Generation,
    slot: Slot,
    fault: Fault | None,
    pace: Callable[[], float] = lambda: 1.0,
) -> None:
    # Like real servers, headers and the role chunk go out at once, even while the request queues.
    exchange.start_stream(encoder.role_event())
    start_s = max(exchange.request.received_s, slot.wait())
    chunk_count = len(generation.chunks)
    if fault is not None:
        chunk_count = min(FAULT_AFTER_CHUNKS, chunk_count)
    _send_content(exchange, encoder, generation, start_s, chunk_count, pace)
    if fault is Fault.STREAM_ERROR:
        exchange.record.outcome = "stream_error"
        exchange.end_stream([encoder.error_event()])
    elif fault is Fault.TRUNCATE:
        exchange.record.outcome = "truncated"
        exchange.end_stream()  # no finish_reason, no [DONE]: just the end of the HTTP body
    else:
        exchange.end_stream(_final_events(encoder, chat, generation))


def _send_content(
    exchange: Exchange,
    encoder: ChatEncoder,
    generation: Generation,
    start_s: float,
    chunk_count: int,
    pace: Callable[[], float] = lambda: 1.0,
) -> None:
    """Chunk k is due one gap (times ``pace()``, read as the gap starts) after chunk k - 1."""
    record, call = exchange.record, generation.tool_call
    due_s, previous_s = start_s, 0.0
    for index in range(chunk_count):
        offset_s = generation.offsets_s[index]
        due_s += (offset_s - previous_s) * (pace() if index else 1.0)
        previous_s = offset_s
        sleep_until(due_s)
        text, first = generation.chunks[index], index == 0
        event = encoder.content_event(text) if call is None else encoder.tool_call_event(text, first)
        exchange.send_event(event, first_token=first)
        sent_s = time.perf_counter()
        record.chunk_late_us.append(round((sent_s - due_s) * 1e6))
        record.completion_tokens += generation.chunk_tokens[index]


def _final_events(encoder: ChatEncoder, chat: ChatRequest, generation: Generation) -> list[bytes]:
    events = [encoder.finish_event(generation.finish_reason)]
    if chat.include_usage:
        events.append(encoder.usage_event(chat.prompt_tokens, generation.completion_tokens))
    events.append(DONE_EVENT)
    return events
