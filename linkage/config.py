"""A linkage config: which input fields mean what, how to block, compare, score and decide.

Read from YAML and checked whole before anything runs, against the JSON Schema
``linkage/config.schema.json`` at every level and then for what spans keys: every problem
is reported at once, each with its line and the path of the offending entry, so a user can
fix a config in one go. docs/linkage-config.md describes every key.

>>> config = LinkageConfig.from_yaml('''
... name: people
... mode: dedupe
... fields: {surname: last_name, dob: birth_date}
... blocking:
...   - {name: surname_sdx, parts: [{field: surname, transform: soundex}]}
... comparisons:
...   - {field: surname, method: jaro_winkler, levels: [0.95, 0.85]}
...   - {field: dob, method: date, formats: ["%Y-%m-%d"]}
... ''')
>>> config.fields["surname"], config.comparisons[1].n_levels, config.model.link_threshold
('last_name', 3, 0.9)
>>> LinkageConfig.from_yaml("name: x\\nmode: both\\nfields: {}\\nblocking: []\\ncomparisons: []")
Traceback (most recent call last):
...
linkage.config.ConfigError: linkage config 'x' is invalid:
  <config>:2: mode: must be one of dedupe, link (got 'both')
  <config>:3: fields: map at least one field
  <config>:4: blocking: give at least one blocking key
  <config>:5: comparisons: give at least one comparison
>>> LinkageConfig.from_yaml('''
... name: people
... fields: {surname: last_name}
... blocking: [{name: sdx, parts: [surname]}]
... comparisons: [{field: surname, method: jaro_winkler, levls: [0.9]}]
... ''', "people.yaml")
Traceback (most recent call last):
...
linkage.config.ConfigError: linkage config 'people' is invalid:
  people.yaml:5: comparisons[0].levls: unknown key (allowed: field, formats, levels, method, tolerance)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from mlstream.errors import UserError
from mlstream.yaml_schema import at, compose_with_lines, schema_problems

MODES = ("dedupe", "link")
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
#: The structure of a config, key by key (docs/linkage-config.md explains each one).
SCHEMA_PATH = Path(__file__).resolve().parent / "config.schema.json"


class ConfigError(UserError):
    pass


@dataclass(frozen=True)
class KeyPart:
    field: str
    transform: str = "exact"
    length: int | None = None  # for prefix: how many characters
    format: str | None = None  # for year: the date format of the field, e.g. "%d/%m/%Y"


@dataclass(frozen=True)
class BlockingKey:
    name: str
    parts: tuple[KeyPart, ...]


@dataclass(frozen=True)
class Comparison:
    field: str
    method: str
    #: similarity thresholds, highest first; a similarity >= levels[i] is level n_levels-1-i
    levels: tuple[float, ...] = (1.0,)
    formats: tuple[str, ...] = ("%Y%m%d", "%Y-%m-%d", "%d/%m/%Y")  # for dates
    tolerance: float = 0.0  # for numbers: |a-b| <= tolerance is the partial level

    @property
    def name(self) -> str:
        return self.field

    @property
    def n_levels(self) -> int:
        """Disagreement (0), then one level per threshold; dates and numbers have three."""
        if self.method in ("date", "number"):
            return 3
        return len(self.levels) + 1


@dataclass(frozen=True)
class EMSettings:
    warmup_pairs: int = 2000  # candidate pairs seen before the first fit
    refit_every: int = 5000  # candidate pairs between fits
    iterations: int = 100
    tolerance: float = 1e-6


@dataclass(frozen=True)
class ModelSettings:
    prior_match: float = 0.05  # share of candidate pairs that match, before EM learns it
    link_threshold: float = 0.9  # match probability at or above which a pair is linked
    em: EMSettings = field(default_factory=EMSettings)


@dataclass(frozen=True)
class ClassifierSettings:
    """A river classifier learning from confirmed pairs, beside the Fellegi-Sunter model."""

    min_confirmed: int = 100  # confirmed pairs learned before it takes part in decisions
    weight: float = 0.5  # its share of a pair's match log-odds; Fellegi-Sunter has the rest


@dataclass(frozen=True)
class TruthSettings:
    """Where a record says which entity it truly is (test data such as FEBRL's ids): with it, the
    app reports precision, recall and F1 live."""

    field: str  # "record_id", or a field of the input records
    pattern: str  # a regular expression; its first group is the true entity

    def entity(self, record_id: str, raw: dict) -> str | None:
        value = record_id if self.field == "record_id" else raw.get(self.field)
        found = re.search(self.pattern, value) if isinstance(value, str) else None
        return found.group(1) if found else None


@dataclass(frozen=True)
class LinkageConfig:
    name: str
    mode: str
    fields: dict[str, str]  # name used in blocking and comparisons -> field in the input records
    blocking: tuple[BlockingKey, ...]
    comparisons: tuple[Comparison, ...]
    sources: tuple[str, ...] = ()  # accepted sources; empty: any
    one_to_one: bool = False  # link mode: each record links to at most one record per other source
    max_block_size: int = 200  # records kept per blocking key value (the most recent)
    model: ModelSettings = field(default_factory=ModelSettings)
    truth: TruthSettings | None = None
    classifier: ClassifierSettings | None = None
    description: str = ""
    text: str = ""  # the YAML it was read from, as stored
    #: name -> transform applied to the raw value before normalizing (linkage.normalize.FIELD_TRANSFORMS)
    field_transforms: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, text: str, where: str = "") -> "LinkageConfig":
        source = where or "<config>"
        raw, lines = compose_with_lines(text, source, ConfigError)
        if not isinstance(raw, dict):
            raise ConfigError(f"linkage config {source} must be a YAML mapping, got {type(raw).__name__}")
        return _parse(raw, text, lines, source)

    @classmethod
    def from_file(cls, path: str | Path) -> "LinkageConfig":
        path = Path(path)
        if not path.exists():
            named = CONFIG_DIR / f"{path}.yaml"
            if named.exists():
                path = named
            else:
                bundled = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
                raise ConfigError(f"no linkage config at {path} (bundled configs: {bundled})")
        return cls.from_yaml(path.read_text(), str(path))


@cache
def config_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def _parse(raw: dict, text: str, lines: dict[tuple, int], source: str) -> LinkageConfig:
    """The schema checks each key's shape; here, what spans keys: names used in blocking and
    comparisons must be in fields, levels highest first, the truth pattern a regex with a group."""
    problems = schema_problems(config_schema(), raw, lines, source)

    def where(*path) -> str:
        return at(path, lines, source)

    name = raw.get("name") if isinstance(raw.get("name"), str) and raw.get("name") else source
    raw_fields = raw.get("fields") if isinstance(raw.get("fields"), dict) else {}
    fields = {str(k): str(v["column"] if isinstance(v, dict) else v) for k, v in raw_fields.items()
              if isinstance(v, str) or (isinstance(v, dict) and "column" in v)}
    field_transforms = {str(k): v["transform"] for k, v in raw_fields.items()
                        if isinstance(v, dict) and "transform" in v}

    blocking = []
    for i, key in enumerate(raw.get("blocking") if isinstance(raw.get("blocking"), list) else []):
        if not isinstance(key, dict) or not isinstance(key.get("parts"), list):
            continue
        parts = []
        for j, part in enumerate(key["parts"]):
            part = part if isinstance(part, dict) else {"field": part}
            if part.get("field") not in fields:
                problems.append(f"{where('blocking', i, 'parts', j)}: field {part.get('field')!r} is not in fields")
            parts.append(KeyPart(str(part.get("field")), part.get("transform", "exact"), part.get("length"),
                                 part.get("format")))
        blocking.append(BlockingKey(str(key.get("name")), tuple(parts)))
    if len({k.name for k in blocking}) != len(blocking):
        problems.append(f"{where('blocking')}: key names must be unique")

    comparisons = []
    for i, comp in enumerate(raw.get("comparisons") if isinstance(raw.get("comparisons"), list) else []):
        if not isinstance(comp, dict):
            continue
        if comp.get("field") not in fields:
            problems.append(f"{where('comparisons', i)}: field {comp.get('field')!r} is not in fields")
        levels = comp.get("levels", [1.0])
        numbers = isinstance(levels, list) and all(isinstance(x, (int, float)) for x in levels)
        if numbers and levels != sorted(levels, reverse=True):
            problems.append(f"{where('comparisons', i, 'levels')}: must be similarity thresholds in (0, 1], "
                            "highest first")
        comparisons.append(Comparison(str(comp.get("field")), str(comp.get("method")), tuple(levels),
                                      tuple(comp.get("formats", Comparison.formats)), comp.get("tolerance", 0.0)))

    one_to_one = raw.get("one_to_one", False)
    if one_to_one is True and raw.get("mode", "link") != "link":
        problems.append(f"{where('one_to_one')}: only for mode link")
    raw_truth = raw.get("truth")
    if isinstance(raw_truth, dict) and isinstance(raw_truth.get("pattern"), str):
        try:
            if re.compile(raw_truth["pattern"]).groups < 1:
                problems.append(f"{where('truth', 'pattern')}: needs a group, (...), around the true entity")
        except re.error as err:
            problems.append(f"{where('truth', 'pattern')}: not a regular expression: {err}")
    if problems:
        raise ConfigError(f"linkage config {name!r} is invalid:\n  " + "\n  ".join(problems))

    raw_model = raw.get("model") or {}
    model = ModelSettings(prior_match=raw_model.get("prior_match", ModelSettings.prior_match),
                          link_threshold=raw_model.get("link_threshold", ModelSettings.link_threshold),
                          em=EMSettings(**raw_model.get("em") or {}))
    truth = TruthSettings(raw_truth["field"], raw_truth["pattern"]) if raw_truth is not None else None
    classifier = ClassifierSettings(**(raw["classifier"] or {})) if "classifier" in raw else None
    return LinkageConfig(name, raw.get("mode", "link"), fields, tuple(blocking), tuple(comparisons),
                         tuple(raw.get("sources") or ()), one_to_one, raw.get("max_block_size", 200), model, truth,
                         classifier, raw.get("description", ""), text, field_transforms)
