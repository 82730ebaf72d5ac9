"""`POST /v1/responses`: OpenAI's Responses API on the same timing model, faults and queue as chat.

With a reasoning summary asked for (``"reasoning": {"summary": "auto"}``), the first quarter of the
planned chunks stream as a reasoning item's summary before the message item, as with Anthropic's
thinking. The stream-error fault ends the stream with ``response.failed``; truncation ends the body
without a terminal event; an answer cut at ``max_output_tokens`` ends with ``response.incomplete``.
"""

from __future__ import annotations

from ._capacity import Slot
from ._chat import FAULT_AFTER_CHUNKS, Generation, admit, plan_answer
from ._exchange import Exchange, ServerState, sleep_until
from ._faults import Fault, choose_fault, raise_error_fault
from ._messages import THINKING_SHARE
from ._responses_wire import ResponsesEncoder, parse_responses_request


def serve_responses(state: ServerState, exchange: Exchange) -> None:
    request = parse_responses_request(exchange.request.body)
    exchange.record.prompt_tokens = request.prompt_tokens
    fault = choose_fault(state.config, exchange.rng, exchange.request.headers, streaming=request.stream)
    exchange.record.fault = None if fault is None else fault.value
    raise_error_fault(state.config, fault)
    generation = plan_answer(
        state.config, exchange.rng, request.max_output_tokens, request.tools, "responses"
    )
    count = len(generation.chunks)
    reasoning = request.reasoning_summary and count >= 2 and generation.tool_call is None  # a call: none
    reasoning_chunks = max(1, count // THINKING_SHARE) if reasoning else 0
    encoder = ResponsesEncoder(request.model, request.prompt_tokens)
    with admit(state) as slot:
        if request.stream:
            _stream(exchange, encoder, generation, reasoning_chunks, slot, fault)
        else:
            _complete(exchange, encoder, generation, reasoning_chunks, slot)


def _complete(
    exchange: Exchange, encoder: ResponsesEncoder, generation: Generation, reasoning_chunks: int, slot: Slot
) -> None:
    start_s = max(exchange.request.received_s, slot.wait())
    sleep_until(start_s + generation.offsets_s[-1])
    for index, chunk in enumerate(generation.chunks):  # builds the items; the events are dropped
        if index in (0, reasoning_chunks):
            encoder.open_item(_item_kind(generation, index < reasoning_chunks), generation.tool_call)
        encoder.delta_event(chunk)
    tokens = generation.completion_tokens
    exchange.send_json(200, encoder.response(generation.finish_reason, tokens), first_token=True)
    exchange.record.completion_tokens = tokens


def _stream(
    exchange: Exchange,
    encoder: ResponsesEncoder,
    generation: Generation,
    reasoning_chunks: int,
    slot: Slot,
    fault: Fault | None,
) -> None:
    # Like the real API, headers, response.created and response.in_progress go out at once.
    exchange.start_stream(encoder.start_events())
    start_s = max(exchange.request.received_s, slot.wait())
    chunk_count = len(generation.chunks)
    if fault is not None:
        chunk_count = min(FAULT_AFTER_CHUNKS, chunk_count)
    record = exchange.record
    for index in range(chunk_count):
        sleep_until(start_s + generation.offsets_s[index])
        head = b""
        if index in (0, reasoning_chunks):  # an item's announcement goes with its first delta
            head = encoder.open_item(_item_kind(generation, index < reasoning_chunks), generation.tool_call)
        exchange.send_event(head + encoder.delta_event(generation.chunks[index]), first_token=index == 0)
        record.completion_tokens += generation.chunk_tokens[index]
    if fault is Fault.STREAM_ERROR:
        record.outcome = "stream_error"
        exchange.end_stream([encoder.failed_event()])
    elif fault is Fault.TRUNCATE:
        record.outcome = "truncated"
        exchange.end_stream()
    else:
        exchange.end_stream(encoder.final_events(generation.finish_reason, generation.completion_tokens))


def _item_kind(generation: Generation, reasoning: bool) -> str:
    if reasoning:
        return "reasoning"
    return "message" if generation.tool_call is None else "function_call"
