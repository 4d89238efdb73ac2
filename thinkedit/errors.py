"""Errors a person can act on. Their messages are shown as they are: in the UI, the CLI and the API."""


class ThinkEditError(Exception):
    """A failure with a message a user can act on (a model that will not load, a server that is down)."""


class BadInput(ThinkEditError):
    """The request itself is wrong (not an image, empty instruction, …); refused before any model runs."""


class Cancelled(Exception):
    """Raised from a step or token callback when the person pressed Stop."""
