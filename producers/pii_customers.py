"""A raw "customers" feed with personal data, for the security demo: PII, features and a label that depends on them.

>>> rows = customers(3, run="r1")
>>> rows[0]["id"], sorted(rows[0]) == sorted(f["name"] for f in schema()["fields"])
('r1-00000', True)
"""

from __future__ import annotations

import datetime
import json
import random

from mlstream.kafka.serde import schema_text

SCHEMA_NAME = "customer_pii"
FIRST = ["Ada", "Bram", "Chen", "Dana", "Emre", "Fay", "Gita", "Hugo", "Ines", "Jon", "Kemal", "Lena"]
SIGNED_UP_FROM_MS = 1_735_689_600_000  # 2025-01-01, one customer a minute
LAST = ["Fraser", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak", "Haddad", "Byrne", "Rossi"]


def schema_json() -> str:
    return schema_text(SCHEMA_NAME)


def schema() -> dict:
    return json.loads(schema_json())


def schema_fields() -> list[str]:
    return [f["name"] for f in schema()["fields"]]


def customers(n: int, run: str, seed: int = 11) -> list[dict]:
    """``n`` customers with ids ``<run>-00000``...; churn depends on tenure, spend and support calls, with noise.
    No birth date is on 1 January, so a year-only mask never shows a whole date."""
    rnd = random.Random(f"{seed}-{run}")
    rows = []
    for i in range(n):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        tenure, spend, calls = rnd.randint(1, 72), round(rnd.uniform(10, 120), 2), rnd.randint(0, 9)
        risk = 1.0 - 0.05 * tenure + 0.4 * calls - 0.01 * spend + rnd.gauss(0, 0.6)
        rows.append({
            "id": f"{run}-{i:05d}", "name": f"{first} {last}-{run}{i}",
            "email": f"{first.lower()}.{last.lower()}.{run}{i}@example.com",
            "phone": f"+44 20 {rnd.randint(1000, 9999)} {rnd.randint(1000, 9999)}",
            "birth_date": datetime.date(rnd.randint(1950, 2004), rnd.randint(2, 12), rnd.randint(1, 28)),
            "region": rnd.choice(["EU", "US", "APAC"]), "consent": rnd.random() < 0.75,
            "tenure_months": tenure, "monthly_spend": spend, "support_calls": calls,
            "signed_up_ms": SIGNED_UP_FROM_MS + i * 60_000, "churned": risk > 0.5,
        })
    return rows
