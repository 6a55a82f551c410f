"""Passwords of SCRAM users, one file each (``<folder>/<user>.password``, mode 0600), made at random once."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def password_file(folder: Path, name: str) -> Path:
    return folder / f"{name}.password"


def stored_password(folder: Path, name: str) -> str:
    """The stored password of ``name``, made (random, 0600, in a 0700 folder) the first time it is asked for."""
    path = password_file(folder, name)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(24))
    return path.read_text().strip()
