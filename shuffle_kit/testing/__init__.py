"""Test suites that third-party code can run against shuffle_kit's contracts.

- :class:`StoreTests`: subclass it to hold a store (or a stack of byte-level wrappers over
  one) to the dict-of-bytes model every shuffle_kit store satisfies.

Needs pytest and hypothesis (``pip install shuffle_kit[testing]``).
"""

from .stores import Model, StoreTests, store_machine

__all__ = ["Model", "StoreTests", "store_machine"]
