"""Deepfake Check's local HTTPS inference server (`python -m server`). See docs/api.md."""
