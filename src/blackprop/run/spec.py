"""A study's spec file: ``experiments/<study>/spec.toml``, read with ``tomllib``.

    title = "MNIST-R"
    notes = "notes.md"                  # markdown placed above the tables (default notes.md)
    archived = "why"                    # optional: rows of an earlier library, kept for the report;
                                        # bench refuses to train the study and says why

    [[grid]]                            # one or more grids; each row records its grid's name
    name = "ised-defaults"
    tasks = ["mnist-r"]                 # task names; "mnist-r" expands to the 11 MNIST-R tasks
    methods = ["ised", "reinforce"]     # names, or {method = "ised", settings = {weights = "importance"}}
    seeds = [0, 1, 2]
    recipe = {epochs = 10, threads = 1} # RunConfig fields: epochs lr lr_schedule batch_size num_samples
                                        # train_size valid_size test_size search marginal select threads
                                        # network; k_per_digit = m
                                        # gives sum-n tasks a budget of k = m * n queries per example
    settings = {}                       # estimator settings for every method of the grid

    [[grid.override]]                   # where tasks / methods match (absent: all), these win
    tasks = ["equal"]
    recipe = {lr = 1e-4}

    [[grid.exclude]]                    # runs left out of the grid
    tasks = ["count-3-4"]
    methods = ["exact"]

    [[table]]                           # the report's sections, in order (default: one "accuracy" table
    kind = "accuracy"                   # over all rows); kinds: see blackprop.run.report.TABLE_KINDS
    title = "MNIST-R"
    where = {grid = "ised-defaults"}    # optional: only rows whose fields have these values

Settings are typed by TOML itself (``dedup = false`` is a bool).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, final

from .config import RunConfig

__all__ = ["Grid", "Study", "indecater_samples", "load_study"]

RECIPE_FIELDS = ("epochs", "lr", "lr_schedule", "batch_size", "num_samples", "train_size", "valid_size",
                 "test_size", "search", "marginal", "select", "threads", "network", "k_per_digit")
#: methods that sweep every value of every input in each sample: n * 10 queries per sample on sum-n
SWEEPING = ("indecater", "indecater+")


@dataclass(frozen=True)
@final
class Grid:
    """tasks x methods x seeds under one recipe, with overrides."""

    name: str
    tasks: tuple[str, ...]
    methods: tuple[tuple[str, dict[str, Any]], ...]
    seeds: tuple[int, ...]
    recipe: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    overrides: tuple[dict[str, Any], ...] = ()
    excludes: tuple[dict[str, Any], ...] = ()

    def configs(self) -> list[RunConfig]:
        """The grid's runs, seed-major (every task and method at seed 0 first)."""
        out = []
        for seed in self.seeds:
            for task in self.tasks:
                for method, method_settings in self.methods:
                    if any(_matches(rule, task, method) for rule in self.excludes):
                        continue
                    recipe, settings = dict(self.recipe), {**self.settings, **method_settings}
                    for rule in self.overrides:
                        if _matches(rule, task, method):
                            recipe.update(rule.get("recipe", {}))
                            settings.update(rule.get("settings", {}))
                    multiplier = recipe.pop("k_per_digit", None)
                    if multiplier is not None:
                        n = int(task.removeprefix("sum"))
                        recipe["num_samples"] = indecater_samples(method, int(multiplier) * n, n)
                    out.append(RunConfig(task=task, method=method, seed=seed, estimator_settings=settings,
                                         progress=False, **recipe))
        return out


@dataclass(frozen=True)
@final
class Study:
    """A study folder: its spec, results and notes."""

    folder: Path
    title: str
    grids: tuple[Grid, ...]
    tables: tuple[dict[str, Any], ...]
    notes: Path | None
    #: why the study's runs can no longer be repeated (None: a live study); its report still builds
    archived: str | None = None

    @property
    def results(self) -> Path:
        return self.folder / "results.jsonl"

    @property
    def epochs(self) -> Path:
        return self.folder / "epochs.jsonl"

    def configs(self) -> list[tuple[str, RunConfig]]:
        return [(grid.name, config) for grid in self.grids for config in grid.configs()]


def _matches(rule: dict[str, Any], task: str, method: str) -> bool:
    return task in rule.get("tasks", (task,)) and method in rule.get("methods", (method,))


def indecater_samples(method: str, budget: int, n: int) -> int:
    """N for a budget of k queries per example: IndeCateR(+) spends 10 n per sample, so N = k / (10 n)
    (1 at k = 10n, 10 at k = 100n, as in the paper); other methods draw k samples.

    >>> indecater_samples("indecater+", 1600, 16), indecater_samples("ised", 1600, 16)
    (10, 1600)
    """
    return max(1, budget // (10 * n)) if method in SWEEPING else budget


#: the keys each part of a spec may hold; any other key is refused, naming the file and where it is
TOP_KEYS = ("title", "notes", "archived", "grid", "table")
GRID_KEYS = ("name", "tasks", "methods", "seeds", "recipe", "settings", "override", "exclude")
OVERRIDE_KEYS = ("tasks", "methods", "recipe", "settings")
EXCLUDE_KEYS = ("tasks", "methods")
TABLE_KEYS = ("kind", "title", "where", "plots")
METHOD_KEYS = ("method", "settings")


def load_study(folder: Path, *, check_runs: bool = True) -> Study:
    """Read ``folder/spec.toml``; a ValueError names the file, the entry and the bad key or value.

    ``check_runs``: also resolve every run of every grid (task, method, recipe, estimator settings),
    so a mistake anywhere in the spec stops ``bench`` before its first run trains.
    """
    spec = folder / "spec.toml"
    if not spec.is_file():
        raise ValueError(f"{folder} is not a study folder: {spec} is missing; a study is a folder holding "
                         "spec.toml (see blackprop.run.spec)")
    try:
        data = tomllib.loads(spec.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{spec}: not valid TOML ({error})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{spec}: not valid TOML (not UTF-8 text)") from None
    _known_keys(spec, "the top level", data, TOP_KEYS)
    grids_data = _tables(spec, "grid", data.get("grid", []), "[[grid]]")
    tables = _tables(spec, "table", data.get("table", [{"kind": "accuracy"}]), "[[table]]")
    for i, table in enumerate(tables):
        _known_keys(spec, f"table {i + 1}", table, TABLE_KEYS)
    notes = folder / str(data.get("notes", "notes.md"))
    if "archived" in data and not (isinstance(data["archived"], str) and data["archived"].strip()):
        raise ValueError(f"{spec}: archived = {data['archived']!r}: give the reason as text, e.g. archived = "
                         "\"rows of the library before the validation split\"")
    study = Study(folder=folder, title=str(data.get("title", folder.name)),
                  grids=tuple(_grid(spec, i, g) for i, g in enumerate(grids_data)),
                  tables=tuple(tables), notes=notes if notes.is_file() else None,
                  archived=str(data["archived"]) if "archived" in data else None)
    if check_runs:
        for grid in study.grids:
            try:
                configs = grid.configs()
            except (ValueError, TypeError) as error:
                raise ValueError(f"{spec}: grid {grid.name!r}: {error}") from None
            for config in configs:
                _check_run(spec, grid.name, config)
    return study


def _known_keys(spec: Path, where: str, data: dict[str, Any], valid: tuple[str, ...]) -> None:
    from ..settings import did_you_mean

    unknown = [k for k in data if k not in valid]
    if unknown:
        raise ValueError(f"{spec}: {where}: unknown key {unknown[0]!r}{did_you_mean(unknown[0], valid)}; "
                         f"valid keys: {', '.join(valid)}")


def _tables(spec: Path, key: str, value: Any, form: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"{spec}: {key} must be a list of tables ({form} sections), got {value!r}")
    return value


def _check_run(spec: Path, grid: str, config: RunConfig) -> None:
    """Resolve one run as ``train`` would (task, defaults, method, settings); a ValueError names where."""
    from ..tasks import get_task

    where = f"{spec}: grid {grid!r}, task {config.task!r}, method {config.method!r}"
    try:
        config.resolved(get_task(config.task)).validate()
    except (ValueError, TypeError) as error:
        raise ValueError(f"{where}: {error}") from None


def _grid(spec: Path, index: int, data: dict[str, Any]) -> Grid:
    from ..tasks import MNIST_R

    where = f"{spec}: grid {data.get('name', index)!r}"
    _known_keys(spec, f"grid {data.get('name', index)!r}", data, GRID_KEYS)
    for key in ("tasks", "methods"):
        if not isinstance(data.get(key), list) or not data[key]:
            raise ValueError(f"{where}: {key} must be a non-empty list, got {data.get(key)!r}")
    if not all(isinstance(t, str) for t in data["tasks"]):
        raise ValueError(f"{where}: tasks must be a list of task names, got {data['tasks']!r}")
    for key in ("recipe", "settings"):
        if not isinstance(data.get(key, {}), dict):
            raise ValueError(f"{where}: {key} must be a table ({key} = {{...}}), got {data[key]!r}")
    overrides = _tables(spec, f"grid {data.get('name', index)!r}: override", data.get("override", []),
                        "[[grid.override]]")
    excludes = _tables(spec, f"grid {data.get('name', index)!r}: exclude", data.get("exclude", []),
                       "[[grid.exclude]]")
    for kind, rules, valid in (("override", overrides, OVERRIDE_KEYS), ("exclude", excludes, EXCLUDE_KEYS)):
        for i, rule in enumerate(rules):
            _known_keys(spec, f"grid {data.get('name', index)!r}: {kind} {i + 1}", rule, valid)
            for key in ("recipe", "settings"):
                if not isinstance(rule.get(key, {}), dict):
                    raise ValueError(f"{where}: {kind} {i + 1}: {key} must be a table, got {rule[key]!r}")
    for part in [data.get("recipe", {})] + [o.get("recipe", {}) for o in overrides]:
        unknown = sorted(set(part) - set(RECIPE_FIELDS))
        if unknown:
            raise ValueError(f"{where}: unknown recipe field(s) {', '.join(unknown)}; valid: {', '.join(RECIPE_FIELDS)}")
    methods: list[tuple[str, dict[str, Any]]] = []
    for m in data["methods"]:
        if isinstance(m, str):
            methods.append((m, {}))
        elif isinstance(m, dict) and isinstance(m.get("method"), str) and isinstance(m.get("settings", {}), dict):
            _known_keys(spec, f"grid {data.get('name', index)!r}: method {m['method']!r}", m, METHOD_KEYS)
            methods.append((m["method"], dict(m.get("settings", {}))))
        else:
            raise ValueError(f"{where}: a method is a name or {{method = NAME, settings = {{...}}}}, got {m!r}")
    tasks = tuple(t for name in data["tasks"] for t in (MNIST_R if name == "mnist-r" else [name]))
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"{where}: seeds must be a list of ints, got {seeds!r}")
    return Grid(name=str(data.get("name", f"grid{index}")), tasks=tasks, methods=tuple(methods), seeds=tuple(seeds),
                recipe=dict(data.get("recipe", {})), settings=dict(data.get("settings", {})),
                overrides=tuple(overrides), excludes=tuple(excludes))
