"""The one error text delivery raises."""

from __future__ import annotations


class DeliveryError(Exception):
    """The text could not be put where the cursor is; the message says why, for the user."""


class NotTypable(DeliveryError):
    """This text cannot be typed reliably here (more new characters than free keycodes);
    it can still be pasted."""
