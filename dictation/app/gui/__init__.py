"""PySide6 desktop app. Nothing in this package may import torch (directly or indirectly)."""
