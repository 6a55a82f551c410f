"""A build's snapshot in the model store: the trained estimator, pickled, checked by its SHA-256.

A snapshot that is missing, or whose bytes no longer match the digest the build recorded,
is refused with a :class:`SnapshotError` instead of being served.

    >>> from mlstream.scoring.model_store import FolderModelStore
    >>> import tempfile
    >>> store = FolderModelStore(tempfile.mkdtemp())
    >>> key, digest = save_snapshot(store, "fraud", "1", {"weights": [1.0]})
    >>> load_snapshot(store, key, digest)
    {'weights': [1.0]}
    >>> store.put(key, b"garbage")
    >>> load_snapshot(store, key, digest)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlstream.registry.snapshots.SnapshotError: snapshot ... is corrupt: its SHA-256 is ... but the build recorded ...
"""

from __future__ import annotations

import hashlib
import pickle

from mlstream.errors import UserError
from mlstream.scoring.model_store import ModelStore


class SnapshotError(UserError):
    pass


def snapshot_key(model: str, version: str) -> str:
    return f"snapshots/{model}/{version}/estimator.pkl"


def save_snapshot(store: ModelStore, model: str, version: str, estimator) -> tuple[str, str]:
    """Store the estimator; return (key, SHA-256 of the bytes stored)."""
    data = pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)
    key = snapshot_key(model, version)
    store.put(key, data)
    return key, hashlib.sha256(data).hexdigest()


def load_snapshot(store: ModelStore, key: str, sha256: str):
    data = store.get(key)
    if data is None:
        raise SnapshotError(f"snapshot {store.location(key)} is missing from the model store")
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise SnapshotError(f"snapshot {store.location(key)} is corrupt: its SHA-256 is {digest[:12]}... but the "
                            f"build recorded {sha256[:12]}...")
    try:
        return pickle.loads(data)
    except Exception as err:  # a digest match makes this unlikely: code that can no longer read it
        raise SnapshotError(f"snapshot {store.location(key)} cannot be unpickled by this code ({err})") from err
