"""The playground: a local web page and a JSON API around one trained model
(`python scripts/serve.py`, tinylm.commands.serve).

- `requests`: what a client may send, checked and bounded, a refusal in one sentence;
- `playground`: the model's answers (tokens, a generation step by step, attention weights),
  built from tinylm.generation and tinylm.inspection;
- `model_queue`: one model call at a time, a bounded line of waiting requests;
- `app`: the Starlette app that serves the API and the static page in `static/`.
"""

from tinylm.serve.app import create_app
from tinylm.serve.playground import Playground
from tinylm.serve.requests import Limits

__all__ = ["Limits", "Playground", "create_app"]
