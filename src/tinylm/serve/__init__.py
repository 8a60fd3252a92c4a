"""The playground: a local web page and a JSON API around one trained model
(`python scripts/serve.py`, tinylm.commands.serve).

- `limits`: how much one request may ask (conf/serve.yaml), checked when the server starts;
- `requests`: what a client may send, checked and bounded, a refusal in one sentence;
- `playground`: the model's answers (tokens, a generation step by step, attention weights),
  built from tinylm.generation and tinylm.inspection;
- `model_queue`: one model call at a time, a bounded line of waiting requests;
- `app`: the Starlette app that serves the API and the static page in `static/`.

The exports are imported when first named, so that a command's settings check can read
`limits` without loading the web stack.
"""

from tinylm.utils.lazy import lazy_exports

__all__ = ["Limits", "Playground", "create_app"]

__getattr__ = lazy_exports(
    __name__,
    {
        "Limits": "tinylm.serve.limits",
        "Playground": "tinylm.serve.playground",
        "create_app": "tinylm.serve.app",
    },
)
