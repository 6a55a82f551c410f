"""Where models live outside the process: checkpoints of serving models and snapshots of builds.

A store keeps bytes under keys (``put`` / ``get``); checkpoints (``save`` / ``load``) are
pickles on top of that. ``FolderModelStore`` is the embedded default (a folder);
``S3ModelStore`` keeps the same keys as objects in an S3-compatible bucket. Writes are
atomic in both: a crash mid-write leaves the previous object, never half of one.

    >>> import tempfile
    >>> from river import linear_model
    >>> store = FolderModelStore(tempfile.mkdtemp())
    >>> store.load("demo", "1") is None
    True
    >>> store.save("demo", "1", {"estimator": linear_model.LogisticRegression(), "n_learned": 0})
    >>> sorted(store.load("demo", "1"))
    ['estimator', 'n_learned']
    >>> store.put("snapshots/demo/1.pkl", b"bytes"); store.get("snapshots/demo/1.pkl")
    b'bytes'
    >>> store.get("snapshots/demo/2.pkl") is None
    True
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse


class ModelStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def location(self, key: str) -> str: ...

    def save(self, name: str, version: str, checkpoint: dict[str, Any]) -> None: ...

    def load(self, name: str, version: str) -> dict[str, Any] | None: ...


class CorruptCheckpoint(RuntimeError):
    pass


def checkpoint_key(name: str, version: str) -> str:
    return f"{name}/{version}/checkpoint.pkl"


class _Checkpoints:
    """Pickled checkpoints over ``put`` / ``get``: the same for every store."""

    def save(self, name: str, version: str, checkpoint: dict[str, Any]) -> None:
        self.put(checkpoint_key(name, version), pickle.dumps(checkpoint, protocol=pickle.HIGHEST_PROTOCOL))

    def load(self, name: str, version: str) -> dict[str, Any] | None:
        data = self.get(checkpoint_key(name, version))
        if data is None:
            return None
        try:
            return pickle.loads(data)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, ValueError) as err:
            raise CorruptCheckpoint(
                f"checkpoint {self.location(checkpoint_key(name, version))} cannot be read ({err}); "
                f"move it away to start the model afresh"
            ) from err


class FolderModelStore(_Checkpoints):
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, name: str, version: str) -> Path:
        return self.root / checkpoint_key(name, version)

    def location(self, key: str) -> str:
        return str(self.root / key)

    def put(self, key: str, data: bytes) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".put-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)

    def get(self, key: str) -> bytes | None:
        target = self.root / key
        return target.read_bytes() if target.exists() else None


class S3ModelStore(_Checkpoints):
    """Objects under ``prefix`` in ``bucket`` of any S3-compatible service (AWS, MinIO, Ceph, S3Proxy).

    Credentials come the usual boto3 way (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``,
    a profile, an instance role); ``endpoint_url`` points at a service other than AWS.
    A single PUT is atomic in S3: readers see the old object or the new one.
    """

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None, **client_options):
        import boto3

        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None, **client_options)

    @classmethod
    def from_url(cls, url: str, endpoint_url: str | None = None, **client_options) -> "S3ModelStore":
        """``s3://bucket/prefix``."""
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"{url!r} is not an s3://bucket/prefix URL")
        return cls(parsed.netloc, parsed.path, endpoint_url, **client_options)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise


def open_model_store(url: str, default_root: str | os.PathLike, endpoint_url: str | None = None) -> ModelStore:
    """``s3://bucket/prefix`` (endpoint from ``endpoint_url``), a folder path, or empty for ``default_root``."""
    if url.startswith("s3://"):
        store = S3ModelStore.from_url(url, endpoint_url)
        store.ensure_bucket()
        return store
    return FolderModelStore(url or default_root)
