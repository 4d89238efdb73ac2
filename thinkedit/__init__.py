"""ThinkEdit: an interactive Think-while-Edit studio (EditThinker, arXiv 2512.05965)."""

__version__ = "0.1.0"
