"""What a client of the playground may send, and the one sentence it gets back when the
request cannot be served.

Bodies are JSON objects of plain values, read with a size limit and checked field by field
(pydantic, strict: "5" is not a number, 1 is not true); numbers are bounded by the model
(context, vocabulary) and by the server's Limits (conf/serve.yaml). Nothing a client sends
names a file or is unpickled.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, ValidationError

from tinylm.generation import GenerationSettings

MAX_SEED = 2**63 - 1
STREAMED_STRATEGIES = ("greedy", "sample")  # beam search finishes its sequences together


class BadRequest(Exception):
    """A request the playground refuses: an HTTP status and one sentence for the client."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TokenizeRequest(Request):
    prompt: str


# The defaults are GenerationSettings'; the seed's is a fresh random one, told in the reply.
class GenerateRequest(Request):
    prompt: str = ""
    strategy: str = GenerationSettings.strategy
    max_new_tokens: int = GenerationSettings.max_new_tokens
    temperature: float = GenerationSettings.temperature
    top_k: int | None = GenerationSettings.top_k
    top_p: float = GenerationSettings.top_p
    seed: int | None = None
    stop_at_eos: bool = GenerationSettings.stop_at_eos
    candidates: int = 10  # the most likely tokens shown for each step


class AttentionRequest(Request):
    # The text, or token ids (the page's: a prompt and what was generated after it).
    prompt: str | None = None
    ids: list[int] | None = None
    position: int | None = None  # the query position, counted from 0; None: the last token


def parse(model: type[Request], body: bytes) -> Request:
    """The request `body` holds, or a BadRequest that says what is wrong with it."""
    try:
        fields = json.loads(body) if body else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("The request body is not valid JSON; send a JSON object.") from None
    if not isinstance(fields, dict):
        raise BadRequest("The request body must be a JSON object of settings.")
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        raise BadRequest(validation_sentence(model, error)) from None


def validation_sentence(model: type[Request], error: ValidationError) -> str:
    """pydantic's first complaint as one sentence naming the field."""
    first = error.errors()[0]
    name = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"Unknown setting {name!r}; the settings are {', '.join(model.model_fields)}."
    if first["type"] == "missing":
        return f"{name} is missing; send it in the JSON object."
    message = first["msg"].replace("Input should", "should", 1)
    return f"{name} {message}, not {first['input']!r}."


def check_range(name: str, value: float, low: float, high: float, why: str = "") -> None:
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}{why}, not {value}.")
