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


class StoreRebuiltError(StoreError):
    """The store was rebuilt with other models while it was open; it has to be opened again."""


class StoreChangedError(StoreError):
    """Results read from an earlier state of the store (e.g. passages) are no longer in it."""
