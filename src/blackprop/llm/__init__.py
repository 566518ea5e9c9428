"""Language models as black-box programs: an OpenAI-compatible client with a persistent cache,
LLM programs, and an offline embedding program.

    from blackprop.llm import ChatClient, llm_program
    client = ChatClient()      # OPENAI_BASE_URL / OPENAI_API_KEY / BLACKPROP_LLM_MODEL / BLACKPROP_LLM_BUDGET
    program = llm_program(client, inputs=(colour,), output=fruit, prompt=lambda c: f"A {c} fruit?")
"""

from .cache import ResponseCache, cache_key, default_cache_path
from .client import BudgetExhausted, ChatClient, LLMError, LLMStats, LLMUnavailable, MalformedResponse, MissingEndpoint
from .embedding import EmbeddingChooser, EmbeddingUnavailable, wordllama_embedder
from .program import LLMFunction, UnparseableAnswer, first_mention, llm_program

__all__ = [
    "BudgetExhausted",
    "ChatClient",
    "EmbeddingChooser",
    "EmbeddingUnavailable",
    "LLMError",
    "LLMFunction",
    "LLMStats",
    "LLMUnavailable",
    "MalformedResponse",
    "MissingEndpoint",
    "ResponseCache",
    "UnparseableAnswer",
    "cache_key",
    "default_cache_path",
    "first_mention",
    "llm_program",
    "wordllama_embedder",
]
