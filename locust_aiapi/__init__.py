"""locust-aiapi: load-test AI APIs (LLM chat completions, embeddings) with Locust.

Importing this package registers its command-line options and listeners on Locust's global
``events``, like any Locust plugin; it does nothing else (no I/O, no environment checks).
"""

from __future__ import annotations

from locust import events as _locust_events

from ._arrival_user import ArrivalRateUser
from ._conversation import Conversation
from ._datasets import DatasetError, load_dataset
from ._distributions import Distribution, parse_distribution
from ._errors import (
    AIAPIError,
    AIRequestFailure,
    ConfigurationError,
    InvalidResponseError,
    ProtocolError,
    ResponseError,
)
from ._histogram import LogHistogram
from ._jsonl import record_to_dict
from ._metrics import (
    chunk_gaps_ms,
    e2e_ms,
    itl_ms,
    output_tokens_per_s,
    time_to_headers_ms,
    tpot_ms,
    ttfc_ms,
    ttft_ms,
)
from ._plugin import get_summary, install
from ._prompts import ConversationScript, ListSource, Prompt, PromptSource, SyntheticSource
from ._records import (
    ChatResult,
    EmbeddingResult,
    FailureKind,
    Outcome,
    RequestKind,
    RequestRecord,
    RequestTags,
    ThinkingBlock,
    TokenSource,
    ToolCall,
    Usage,
)
from ._retry import RetryPolicy
from ._run_state import AI_REQUEST_EVENT
from ._shape_specs import SpikeSpec
from ._shapes import AIShape, ConstantArrivalRateShape, Phase, SpikeShape, StagesShape, StepSweepShape
from ._summary import LLMSummary
from ._users import AIChatUser, EmbeddingUser

__version__ = "0.1.0"

__all__ = [
    "AIAPIError",
    "AIChatUser",
    "AIRequestFailure",
    "AIShape",
    "AI_REQUEST_EVENT",
    "ArrivalRateUser",
    "ChatResult",
    "ConfigurationError",
    "ConstantArrivalRateShape",
    "Conversation",
    "ConversationScript",
    "DatasetError",
    "Distribution",
    "EmbeddingResult",
    "EmbeddingUser",
    "FailureKind",
    "InvalidResponseError",
    "LLMSummary",
    "ListSource",
    "LogHistogram",
    "Outcome",
    "Phase",
    "Prompt",
    "PromptSource",
    "ProtocolError",
    "RequestKind",
    "RequestRecord",
    "RequestTags",
    "ResponseError",
    "RetryPolicy",
    "SpikeShape",
    "SpikeSpec",
    "StagesShape",
    "StepSweepShape",
    "SyntheticSource",
    "ThinkingBlock",
    "TokenSource",
    "ToolCall",
    "Usage",
    "__version__",
    "chunk_gaps_ms",
    "e2e_ms",
    "get_summary",
    "itl_ms",
    "load_dataset",
    "output_tokens_per_s",
    "parse_distribution",
    "record_to_dict",
    "time_to_headers_ms",
    "tpot_ms",
    "ttfc_ms",
    "ttft_ms",
]

install(_locust_events)
