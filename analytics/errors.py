"""Typed errors of the analytics package; each message says what the user can do about it."""

from __future__ import annotations


class AnalyticsError(Exception):
    """Base of every error a user can cause in analytics (bad table, bad config, bad model file)."""


class DataError(AnalyticsError):
    """The input table cannot be used as given (missing column, NaN, constant sensor, too short...)."""


class ModelFileError(AnalyticsError):
    """A saved model cannot be loaded (not a model file, damaged, or written by another version)."""


class DatasetError(AnalyticsError):
    """A benchmark dataset folder is missing or not in the expected layout."""
