"""Looking inside a GPT: its attention weights, drawn as heat maps, and the shape of every
intermediate tensor for a prompt. Everything is read from the model's own forward pass with
forward hooks (tinylm.model.attention's probes name the tensors inside attention).

Used by `scripts/attention.py`, notebooks/train_a_tiny_gpt.ipynb and docs/learning-path.md.
"""

from tinylm.inspection.attention_map import (
    attention_title,
    draw_attention,
    save_figure,
    token_labels,
)
from tinylm.inspection.attention_weights import attention_weights
from tinylm.inspection.shape_trace import Stage, format_trace, trace_shapes

__all__ = [
    "Stage",
    "attention_title",
    "attention_weights",
    "draw_attention",
    "format_trace",
    "save_figure",
    "token_labels",
    "trace_shapes",
]
