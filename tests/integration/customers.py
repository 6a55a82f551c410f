"""A typed "customers" table for the CSV tests: strings, an enum, a nullable number, a dotted column, an ISO
time and a yes/no label that depends on them (with noise)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

COLUMNS = ["customer_id", "name", "plan", "monthly_fee", "tenure_months", "support_calls", "address.city",
           "address.zip", "signed_up", "churned"]


def customers(n: int, seed: int = 7) -> list[dict]:
    """Customers whose churn depends on plan, tenure, support calls and city, with noise."""
    rnd = random.Random(seed)
    cities = ["Leeds", "York", "New York", "São Paulo", "Lyon", "Osaka"]
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    rows = []
    for i in range(n):
        plan = rnd.choice(["basic", "standard", "premium"])
        tenure, city = rnd.randint(1, 72), rnd.choice(cities)
        calls = None if rnd.random() < 0.2 else rnd.randint(0, 9)
        risk = ((1.2 if plan == "basic" else 0.0) - 0.04 * tenure + 0.35 * (calls or 0)
                + (0.8 if city == "Lyon" else 0.0) + rnd.gauss(0, 0.5))
        rows.append({"customer_id": f"cust-{i:05d}", "name": f"Customer {rnd.randrange(10 ** 9):09d}", "plan": plan,
                     "monthly_fee": round({"basic": 20, "standard": 45, "premium": 80}[plan] + rnd.uniform(-5, 5), 2),
                     "tenure_months": tenure, "support_calls": "" if calls is None else calls,
                     "address.city": city, "address.zip": rnd.randint(10000, 99999),
                     "signed_up": (start + timedelta(minutes=i)).isoformat(),
                     "churned": "yes" if risk > 0.3 else "no"})
    return rows


def write_customers_csv(path, rows: list[dict], broken: dict[int, str] | None = None) -> None:
    """The rows as a CSV with a header line, each of ``broken``'s lines put at its line number."""
    lines = [",".join(COLUMNS)] + [",".join(str(row[c]) for c in COLUMNS) for row in rows]  # no cell has a comma
    for line in sorted(broken or {}):
        lines.insert(line - 1, broken[line])
    path.write_text("\n".join(lines) + "\n")
