"""`POST /v1/messages`: Anthropic's Messages API on the same timing model, faults and queue as chat.

With ``thinking`` enabled, the first quarter of the planned chunks (at least one, and never all of
them when there are two or more) stream as a thinking block before the text block: every chunk is
an output token, so TTFT is at the first thinking delta and the first visible text comes later. A tool
call is thought about first too: a quarter as many thinking chunks as the call has (at least one) come
before it, within ``max_tokens``. Every thinking block ends signed (``_thinking``: a changed one no longer
verifies).
The stream-error fault sends the ``overloaded_error`` event Anthropic sends when it sheds load
mid-stream; the forced fault ``x-mock-fault: 529`` answers HTTP 529.
"""

from __future__ import annotations

from ._capacity import Slot
from ._chat import FAULT_AFTER_CHUNKS, Generation, admit, plan_answer, think_before_call
from ._exchange import Exchange, ServerState, sleep_until
from ._faults import Fault, choose_fault, raise_error_fault
from ._messages_wire import MessagesEncoder, MessagesRequest, parse_messages_request

THINKING_SHARE = 4  # one chunk in this many is thinking


def serve_messages(state: ServerState, exchange: Exchange) -> None:
    request = parse_messages_request(exchange.request.body)
    exchange.record.prompt_tokens = request.prompt_tokens
    fault = choose_fault(state.config, exchange.rng, exchange.request.headers, streaming=request.stream)
    exchange.record.fault = None if fault is None else fault.value
    raise_error_fault(state.config, fault)
    generation = plan_answer(state.config, exchange.rng, request.max_tokens, request.tools, "messages")
    if request.thinking and generation.tool_call is not None:
        generation, thinking_chunks = think_before_call(
            state.config, exchange.rng, generation, request.max_tokens
        )
    else:
        thinking_chunks = _thinking_chunks(request, generation)
    with admit(state) as slot:
        if request.stream:
            _stream(exchange, request, generation, thinking_chunks, slot, fault)
        else:
            _complete(exchange, request, generation, thinking_chunks, slot)


def _thinking_chunks(request: MessagesRequest, generation: Generation) -> int:
    count = len(generation.chunks)
    if not request.thinking or count < 2:
        return 0
    return max(1, count // THINKING_SHARE)


def _complete(
    exchange: Exchange, request: MessagesRequest, generation: Generation, thinking_chunks: int, slot: Slot
) -> None:
    start_s = max(exchange.request.received_s, slot.wait())
    sleep_until(start_s + generation.offsets_s[-1])
    encoder = MessagesEncoder(request.model, request.prompt_tokens)
    tokens = generation.completion_tokens
    thinking = "".join(generation.chunks[:thinking_chunks])
    text = "".join(generation.chunks[thinking_chunks:])
    message = encoder.message(thinking, text, generation.finish_reason, tokens, generation.tool_call)
    exchange.send_json(200, message, first_token=True)
    exchange.record.completion_tokens = tokens


def _stream(
    exchange: Exchange,
    request: MessagesRequest,
    generation: Generation,
    thinking_chunks: int,
    slot: Slot,
    fault: Fault | None,
) -> None:
    encoder = MessagesEncoder(request.model, request.prompt_tokens)
    # Like the real API, headers, message_start and a ping go out at once, even while the request queues.
    exchange.start_stream(b"".join(encoder.start_events()))
    start_s = max(exchange.request.received_s, slot.wait())
    chunk_count = len(generation.chunks)
    if fault is not None:
        chunk_count = min(FAULT_AFTER_CHUNKS, chunk_count)
    _send_blocks(exchange, encoder, generation, start_s, chunk_count, thinking_chunks)
    if fault is Fault.STREAM_ERROR:
        exchange.record.outcome = "stream_error"
        exchange.end_stream([encoder.error_event()])
    elif fault is Fault.TRUNCATE:
        exchange.record.outcome = "truncated"
        exchange.end_stream()  # no message_delta, no message_stop: just the end of the HTTP body
    else:
        exchange.end_stream(encoder.final_events(generation.finish_reason, generation.completion_tokens))


def _send_blocks(
    exchange: Exchange,
    encoder: MessagesEncoder,
    generation: Generation,
    start_s: float,
    chunk_count: int,
    thinking_chunks: int,
) -> None:
    """The content deltas on schedule; a block's start (and the previous block's end) goes with its
    first delta, as the real API sends them back to back."""
    record, call = exchange.record, generation.tool_call
    answer_kind = "text" if call is None else "tool_use"
    for index in range(chunk_count):
        kind = "thinking" if index < thinking_chunks else answer_kind
        sleep_until(start_s + generation.offsets_s[index])
        head = b""
        if index == thinking_chunks and thinking_chunks:  # the thinking block ends signed
            head = encoder.signature_event("".join(generation.chunks[:thinking_chunks]))
        if index in (0, thinking_chunks):
            head += encoder.open_block(kind, call)
        exchange.send_event(
            head + encoder.delta_event(kind, generation.chunks[index]), first_token=index == 0
        )
        record.completion_tokens += generation.chunk_tokens[index]
    if thinking_chunks >= chunk_count == len(generation.chunks):  # it stopped thinking: signed at the end
        exchange.send_event(encoder.signature_event("".join(generation.chunks)))
