"""A linkage config: which input fields mean what, how to block, compare, score and decide.

Read from YAML and checked whole before anything runs: every problem is reported at
once, each with the path of the offending entry, so a user can fix a config in one go.

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
  mode: must be one of dedupe, link (got 'both')
  fields: map at least one field
  blocking: give at least one blocking key
  comparisons: give at least one comparison
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mlstream.errors import UserError

MODES = ("dedupe", "link")
TRANSFORMS = ("exact", "soundex", "metaphone", "nysiis", "match_rating", "digits", "prefix", "year")
STRING_METHODS = ("jaro_winkler", "levenshtein", "damerau_levenshtein", "token_set", "exact")
METHODS = STRING_METHODS + ("date", "number")
CONFIG_DIR = Path(__file__).resolve().parent / "configs"


class ConfigError(UserError):
    pass


@dataclass(frozen=True)
class KeyPart:
    field: str
    transform: str = "exact"
    length: int | None = None  # for prefix: how many characters


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

    @classmethod
    def from_yaml(cls, text: str, where: str = "") -> "LinkageConfig":
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"linkage config {where or ''} is not valid YAML: {err}") from err
        if not isinstance(raw, dict):
            raise ConfigError(f"linkage config {where} must be a YAML mapping, got {type(raw).__name__}")
        return _parse(raw, text, where)

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


def _parse(raw: dict, text: str, where: str) -> LinkageConfig:
    problems: list[str] = []
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        problems.append("name: give the config a name")
        name = where or "?"
    mode = raw.get("mode", "link")
    if mode not in MODES:
        problems.append(f"mode: must be one of {', '.join(MODES)} (got {mode!r})")
    fields = raw.get("fields") or {}
    if not isinstance(fields, dict) or not fields:
        problems.append("fields: map at least one field")
        fields = {}
    fields = {str(k): str(v) for k, v in fields.items()}

    blocking = []
    raw_blocking = raw.get("blocking") or []
    if not raw_blocking:
        problems.append("blocking: give at least one blocking key")
    for i, key in enumerate(raw_blocking):
        at = f"blocking[{i}]"
        if not isinstance(key, dict) or not key.get("name") or not key.get("parts"):
            problems.append(f"{at}: needs a name and parts")
            continue
        parts = []
        for j, part in enumerate(key["parts"]):
            part = part if isinstance(part, dict) else {"field": part}
            transform = part.get("transform", "exact")
            if part.get("field") not in fields:
                problems.append(f"{at}.parts[{j}]: field {part.get('field')!r} is not in fields")
            if transform not in TRANSFORMS:
                problems.append(f"{at}.parts[{j}]: transform must be one of {', '.join(TRANSFORMS)} "
                                f"(got {transform!r})")
            length = part.get("length")
            if transform == "prefix" and not (isinstance(length, int) and length > 0):
                problems.append(f"{at}.parts[{j}]: prefix needs a positive length")
            parts.append(KeyPart(str(part.get("field")), transform, length))
        blocking.append(BlockingKey(str(key["name"]), tuple(parts)))
    if len({k.name for k in blocking}) != len(blocking):
        problems.append("blocking: key names must be unique")

    comparisons = []
    raw_comparisons = raw.get("comparisons") or []
    if not raw_comparisons:
        problems.append("comparisons: give at least one comparison")
    for i, comp in enumerate(raw_comparisons):
        at = f"comparisons[{i}]"
        if not isinstance(comp, dict):
            problems.append(f"{at}: must be a mapping with field and method")
            continue
        method = comp.get("method")
        if comp.get("field") not in fields:
            problems.append(f"{at}: field {comp.get('field')!r} is not in fields")
        if method not in METHODS:
            problems.append(f"{at}: method must be one of {', '.join(METHODS)} (got {method!r})")
        levels = tuple(float(x) for x in comp.get("levels", [1.0]))
        if not levels or any(not 0 < x <= 1 for x in levels) or list(levels) != sorted(levels, reverse=True):
            problems.append(f"{at}: levels must be similarity thresholds in (0, 1], highest first")
        formats = tuple(comp.get("formats", Comparison.formats))
        comparisons.append(Comparison(str(comp.get("field")), str(method), levels, formats,
                                      float(comp.get("tolerance", 0.0))))

    raw_model = raw.get("model") or {}
    raw_em = raw_model.get("em") or {}
    try:
        em = EMSettings(**raw_em)
        model = ModelSettings(prior_match=float(raw_model.get("prior_match", ModelSettings.prior_match)),
                              link_threshold=float(raw_model.get("link_threshold", ModelSettings.link_threshold)),
                              em=em)
        if not 0 < model.prior_match < 1 or not 0 < model.link_threshold < 1:
            problems.append("model: prior_match and link_threshold must lie strictly between 0 and 1")
    except (TypeError, ValueError) as err:
        problems.append(f"model: {err}")
        model = ModelSettings()

    sources = tuple(str(s) for s in raw.get("sources") or ())
    one_to_one = bool(raw.get("one_to_one", False))
    if one_to_one and mode != "link":
        problems.append("one_to_one: only for mode link")
    max_block_size = raw.get("max_block_size", 200)
    if not isinstance(max_block_size, int) or max_block_size < 1:
        problems.append("max_block_size: must be a positive integer")
    truth = None
    raw_truth = raw.get("truth")
    if raw_truth is not None:
        if not isinstance(raw_truth, dict) or not raw_truth.get("field") or not raw_truth.get("pattern"):
            problems.append("truth: needs a field (record_id or an input field) and a pattern")
        else:
            try:
                if re.compile(str(raw_truth["pattern"])).groups < 1:
                    problems.append("truth.pattern: needs a group, (...), around the true entity")
            except re.error as err:
                problems.append(f"truth.pattern: not a regular expression: {err}")
            truth = TruthSettings(str(raw_truth["field"]), str(raw_truth["pattern"]))
    classifier = None
    raw_classifier = raw.get("classifier")
    if raw_classifier is not None:
        try:
            classifier = ClassifierSettings(**(raw_classifier or {}))
            if classifier.min_confirmed < 1 or not 0 < classifier.weight <= 1:
                problems.append("classifier: min_confirmed must be positive and weight in (0, 1]")
        except TypeError as err:
            problems.append(f"classifier: {err}")
    unknown = set(raw) - {"name", "mode", "fields", "blocking", "comparisons", "sources", "one_to_one",
                          "max_block_size", "model", "truth", "classifier", "description"}
    if unknown:
        problems.append(f"unknown keys: {', '.join(sorted(unknown))}")
    if problems:
        raise ConfigError(f"linkage config {name!r} is invalid:\n  " + "\n  ".join(problems))
    return LinkageConfig(name, mode, fields, tuple(blocking), tuple(comparisons), sources, one_to_one,
                         max_block_size, model, truth, classifier, str(raw.get("description", "")), text)
