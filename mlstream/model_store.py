"""Where model checkpoints live, so that a restarted app keeps learning instead of starting over.

``ModelStore`` is the interface; ``FolderModelStore`` keeps pickles in a folder
(the embedded default). Writes are atomic: a crash mid-write leaves the previous
checkpoint, never half a file.

    >>> import tempfile
    >>> from river import linear_model
    >>> store = FolderModelStore(tempfile.mkdtemp())
    >>> store.load("demo", "1") is None
    True
    >>> store.save("demo", "1", {"estimator": linear_model.LogisticRegression(), "n_learned": 0})
    >>> sorted(store.load("demo", "1"))
    ['estimator', 'n_learned']
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Protocol


class ModelStore(Protocol):
    def save(self, name: str, version: str, checkpoint: dict[str, Any]) -> None: ...

    def load(self, name: str, version: str) -> dict[str, Any] | None: ...


class CorruptCheckpoint(RuntimeError):
    pass


class FolderModelStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, name: str, version: str) -> Path:
        return self.root / name / version / "checkpoint.pkl"

    def save(self, name: str, version: str, checkpoint: dict[str, Any]) -> None:
        target = self.path(name, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".checkpoint-")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(checkpoint, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)

    def load(self, name: str, version: str) -> dict[str, Any] | None:
        target = self.path(name, version)
        if not target.exists():
            return None
        try:
            with target.open("rb") as f:
                return pickle.load(f)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as err:
            raise CorruptCheckpoint(
                f"checkpoint {target} cannot be read ({err}); move it away to start the model afresh"
            ) from err
