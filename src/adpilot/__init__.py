"""adpilot: precision marketing with language models.

The library core is organised by workflow stage (``adpilot.data`` → ``adpilot.profiling`` →
``adpilot.generation`` → …); the CLI, HTTP API and dashboard are thin shells over it.
"""

from adpilot.errors import AdpilotError

__version__ = "0.1.0"

__all__ = ["AdpilotError", "__version__"]
