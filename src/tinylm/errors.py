"""Errors a user can fix. Entry points print their message as one line and exit non-zero."""


class TinyLMError(ValueError):
    """A problem with the user's input; the message says what was wrong and what to do."""


class ConfigError(TinyLMError):
    """A configuration value that cannot work."""


class DataError(TinyLMError):
    """Input data that cannot be used."""


class TokenizerError(TinyLMError):
    """Text a tokenizer cannot encode, or a tokenizer that cannot be built or restored."""


class CheckpointError(TinyLMError):
    """A checkpoint that is missing, unreadable, unsafe to load, or not tinylm's."""


class PromptError(TinyLMError):
    """A prompt the model cannot continue."""


class WriteError(TinyLMError):
    """A file that could not be written (a full disk, a read-only folder); the file that was
    there before is kept as it was."""


class DivergenceError(TinyLMError):
    """Training whose loss or weights stopped being finite numbers (NaN or infinite)."""
