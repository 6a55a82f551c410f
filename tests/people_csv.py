"""Two CSV exports of the same people in a layout unlike FEBRL's: other column names, date formats, typos.

Shared by the linker's unit test and the eval's integration test: linking them needs only a
config (PEOPLE_CONFIG), no code.
"""

from __future__ import annotations

import csv
from pathlib import Path

from linkage.datasets import load_febrl

PEOPLE_CONFIG = """
name: people
mode: link
sources: [crm, billing]
fields: {first: FirstName, last: LastName, born: BirthDate, zip: Zip, phone: Phone}
blocking:
  - {name: last_metaphone, parts: [{field: last, transform: metaphone}]}
  - {name: born, parts: [born]}
  - {name: phone, parts: [{field: phone, transform: digits}]}
comparisons:
  - {field: first, method: jaro_winkler, levels: [0.94, 0.85]}
  - {field: last, method: jaro_winkler, levels: [0.94, 0.85]}
  - {field: born, method: date, formats: ["%d.%m.%Y", "%Y-%m-%d"]}
  - {field: zip, method: exact}
  - {field: phone, method: levenshtein, levels: [1.0, 0.8]}
model: {link_threshold: 0.8, em: {warmup_pairs: 50, refit_every: 100}}
"""
COLUMNS = ["Id", "FirstName", "LastName", "BirthDate", "Zip", "Phone"]


def write_people_csvs(folder: Path, n: int) -> tuple[Path, Path, set[frozenset[str]]]:
    """crm.csv (ids c<i>) and billing.csv (ids b<i>) of ``n`` people, and their true pairs."""
    people = load_febrl("febrl4").records[:2 * n:2]  # people of source a
    crm, billing = [], []
    for i, person in enumerate(people):
        f = person.fields
        dob = f["date_of_birth"] or ""
        phone = f"04{f['soc_sec_id']}"
        crm.append([f"c{i}", f["given_name"], f["surname"], f"{dob[6:]}.{dob[4:6]}.{dob[:4]}" if dob else "",
                    f["postcode"], phone])
        surname = (f["surname"] or "x")
        typo = surname[:-1] + "e" if i % 3 == 0 else surname
        billing.append([f"b{i}", (f["given_name"] or "").upper(), typo,
                        f"{dob[:4]}-{dob[4:6]}-{dob[6:]}" if dob else "", f["postcode"], phone])
    paths = folder / "crm.csv", folder / "billing.csv"
    for path, rows in zip(paths, (crm, billing)):
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows(rows)
    return paths[0], paths[1], {frozenset((f"crm|c{i}", f"billing|b{i}")) for i in range(len(people))}
