"""Exceptions raised by the store; every message is one line a user can act on."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every store error."""


class StoreFormatError(StoreError):
    """The directory is not a store, or its manifest/metadata is unreadable or of an unknown format."""


class StoreLockedError(StoreError):
    """Another writer holds the store's lock."""


class StoreMismatchError(StoreError):
    """The caller's models/dtype/chunking differ from the ones the store was built with."""


class StoreCorruptError(StoreError):
    """A file the committed metadata refers to is missing or does not match its checksum."""
