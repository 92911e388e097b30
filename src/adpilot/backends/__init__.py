"""Pluggable backends: ``llm/`` (local llama.cpp, OpenAI-compatible HTTP, transformers)."""
