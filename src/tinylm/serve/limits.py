"""How much one request to the playground may ask (conf/serve.yaml's `limits`): the schema that
scripts/serve.py checks each key of at its start, and that the request checks read."""

from __future__ import annotations

from dataclasses import dataclass

from tinylm.schema import setting


@dataclass(frozen=True, kw_only=True)
class Limits:
    max_body_bytes: int = setting(65_536, "the largest request body, in bytes", low=1)
    max_prompt_chars: int = setting(20_000, "the longest prompt, in characters", low=1)
    max_new_tokens: int = setting(1_024, "the most tokens one request may generate", low=1)
    max_temperature: float = setting(5.0, "the highest sampling temperature", low=0)
    max_candidates: int = setting(20, "the most likely tokens shown for each step", low=1)
    waiting: int = setting(
        8, "requests that may wait while the model works on one; more get a 503", low=0
    )
    retry_after_s: int = setting(5, "the seconds a 503 tells the client to wait", low=0)
