"""The directory: the users Ranger policies name, their groups (teams) and attributes.

Ranger gets users and groups from LDAP through usersync; mlstream gets them from a small YAML
file, so that a team named in a policy can be expanded into its users (a Kafka principal is
``User:`` only: an ACL for a group is accepted by the broker and never matches).

>>> d = Directory.parse("users:\\n  alice: {groups: [fraud], attributes: {region: EU}}\\n  bob: {}\\n", "dir.yaml")
>>> d.members("fraud"), d.groups_of("bob"), d.users["alice"].attributes
(('alice',), (), {'region': 'EU'})
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from mlstream.errors import UserError
from mlstream.settings import SCHEMA_DIR
from mlstream.yaml_schema import compose_with_lines, schema_problems

SCHEMA_PATH = SCHEMA_DIR / "security_directory.schema.json"

#: Ranger's group of every user; a policy may name it without the directory listing it.
PUBLIC_GROUP = "public"


class SecurityConfigError(UserError):
    """A policy file or directory breaks its schema or names what does not exist; the message lists each problem."""


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Directory:
    users: dict[str, User]

    @classmethod
    def parse(cls, text: str, source: str) -> "Directory":
        document, lines = compose_with_lines(text, source, SecurityConfigError)
        if document is None:
            raise SecurityConfigError(f"{source}: empty; a directory needs 'users:' (see docs/security.md)")
        problems = schema_problems(directory_schema(), document, lines, source)
        if problems:
            raise SecurityConfigError(f"directory {source} is invalid:\n  " + "\n  ".join(problems))
        return cls({name: User(name, tuple(entry.get("groups", ())), dict(entry.get("attributes", {})))
                    for name, entry in document["users"].items()})

    @property
    def groups(self) -> set[str]:
        return {group for user in self.users.values() for group in user.groups}

    def members(self, group: str) -> tuple[str, ...]:
        """The users of ``group``, sorted; every user for Ranger's ``public``."""
        return tuple(sorted(name for name, user in self.users.items()
                            if group == PUBLIC_GROUP or group in user.groups))

    def groups_of(self, user: str) -> tuple[str, ...]:
        return self.users[user].groups if user in self.users else ()


@cache
def directory_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())
