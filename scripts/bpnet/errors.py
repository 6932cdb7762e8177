"""The one exception type for a user mistake (bad file, bad config value, bad input shape).

Everything that a user can cause raises :class:`BPNetInputError` with a message that names the
file (and line) or config key and says what was expected. The rule runner turns it into a short
message and a non-zero exit, never a traceback.
"""


class BPNetInputError(ValueError):
    """A user mistake: the message names the file, line or config key and what is expected."""
