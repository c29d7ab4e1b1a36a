"""The code tables in force: Liaison's JSON tables, a site's overrides, checked against the CI-SIS JDVs.

A hospital never edits code to change a mapping. Each table of ``mappings/codes/``
(any name: ``discharge_modes``, ``txa_document_types``, ...) can be

- **replaced** by a JSON file of the same shape (``mappings.table_files.<name>``), and/or
- **amended** entry by entry (``[mappings.tables.<name>]``): mappings merge key by key
  at any depth; any other value, and a *coded entry* (a mapping holding ``code``),
  replaces what was there whole.

Table shape (JSON): free keys for the renderer, ``_``-prefixed keys for documentation
(``_source``), and optionally

- ``"value_set"``: the JDV the table's codes belong to (file name or OID). As a string,
  every coded entry ``{"code", "system", "display"}`` of the table is checked; as
  ``{"id": ..., "codes": [selector, ...]}`` only the selected nodes are (a selector is
  a dotted path where ``*`` is every value of a mapping and ``~`` every key; a selected
  string is a code in the table's ``coding_scheme``);
- ``"references"``: ``{selector: "member"}``, each selected code must be a key of that
  member (``by_txa2.*`` → ``types``), so a lookup can never miss.

When the JDV files are available (:mod:`mappings.value_sets`) a coded entry missing its
``system`` or ``display`` gets them from the JDV, and :meth:`Tables.check` reports every
code outside its value set, naming the configuration key that brought it.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from mappings import codes
from mappings.value_sets import ValueSetError, locate_jdv_dir, value_set
from router.config_values import read_text
from router.errors import ConfigError

Path_ = tuple[str, ...]
TABLES_KEY = "mappings.tables"
FILES_KEY = "mappings.table_files"


def builtin_names() -> tuple[str, ...]:
    """The tables shipped in ``mappings/codes/``."""
    return tuple(sorted(p.name.removesuffix(".json") for p in resources.files(codes.__name__).iterdir()
                        if p.name.endswith(".json")))


class Tables:
    """The tables in force; build with :meth:`load`, read with :meth:`get`, verify with :meth:`check`."""

    def __init__(self, tables: Mapping[str, dict[str, Any]], *, origins: Mapping[str, str] | None = None,
                 inline: Mapping[str, set[Path_]] | None = None, jdv_dir: Path | None = None):
        self._tables = dict(tables)
        self._origins = dict(origins or {})
        self._inline = {name: set(paths) for name, paths in (inline or {}).items()}
        self.jdv_dir = jdv_dir
        self._problems: list[tuple[str, str]] | None = None
        if jdv_dir is not None:
            for name in self._tables:
                self._fill(name)

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None, files: Mapping[str, str | os.PathLike] | None = None,
             *, jdv_dir: str | os.PathLike | None | bool = None, base: Path | None = None,
             env: Mapping[str, str] | None = None) -> Tables:
        """Built-in tables, replaced by ``files`` and amended by ``overrides`` (raises ConfigError on shape errors).

        ``jdv_dir`` is the JDV directory; None searches it (:func:`~mappings.value_sets.locate_jdv_dir`),
        False leaves the codes unchecked; relative file paths are read from ``base``.
        """
        tables: dict[str, dict[str, Any]] = {}
        origins: dict[str, str] = {}
        for name in builtin_names():
            tables[name] = copy.deepcopy(codes.load(name))
            origins[name] = f"mappings/codes/{name}.json"
        for name, file in (files or {}).items():
            key = f"{FILES_KEY}.{name}"
            path = Path(file) if base is None or Path(file).is_absolute() else base / file
            tables[name] = _read_json(path, key)
            origins[name] = f"{key} ({path})"
        inline: dict[str, set[Path_]] = {}
        if not isinstance(overrides or {}, Mapping):
            raise ConfigError(TABLES_KEY, "expected a table of tables ([mappings.tables.<name>])")
        for name, entries in (overrides or {}).items():
            key = f"{TABLES_KEY}.{name}"
            if name not in tables:
                raise ConfigError(key, f"no table {name!r} to amend (built-in: {', '.join(builtin_names())}; "
                                       f"a new table needs {FILES_KEY}.{name})")
            if not isinstance(entries, Mapping):
                raise ConfigError(key, "expected a table of entries")
            inline[name] = set()
            _merge(tables[name], entries, (), key, inline[name])
        if jdv_dir is None or jdv_dir is True:
            directory = locate_jdv_dir(env=env)
        else:
            directory = Path(jdv_dir).resolve() if jdv_dir is not False else None
        return cls(tables, origins=origins, inline=inline, jdv_dir=directory)

    def get(self, name: str) -> dict[str, Any]:
        """The table ``name`` as in force (shared: do not mutate it)."""
        try:
            return self._tables[name]
        except KeyError:
            raise KeyError(f"no code table {name!r} (known: {', '.join(sorted(self._tables))})") from None

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._tables))

    # Read as a mapping (name → table) too, so renderers take Tables or a plain dict of overrides.
    def __contains__(self, name: object) -> bool:
        return name in self._tables

    def __getitem__(self, name: str) -> dict[str, Any]:
        return self.get(name)

    def check(self) -> list[str]:
        """Every problem as ``key: problem`` (empty when all is well; value sets unchecked without JDV files)."""
        return [f"{key}: {problem}" for key, problem in self._check()]

    def require_valid(self) -> Tables:
        """This object, or ConfigError naming the key of the first problem (and how many others there are)."""
        problems = self._check()
        if problems:
            key, problem = problems[0]
            more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
            raise ConfigError(key, problem + more)
        return self

    # --- checking ---------------------------------------------------------------------------

    def _check(self) -> list[tuple[str, str]]:
        if self._problems is None:
            self._problems = [p for name in sorted(self._tables) for p in self._check_table(name)]
        return self._problems

    def _check_table(self, name: str) -> Iterator[tuple[str, str]]:
        table = self._tables[name]
        for selector, member in (table.get("references") or {}).items():
            targets = table.get(member)
            for path, code, _system, _node in _coded(table, selector):
                if not isinstance(targets, Mapping) or code not in targets:
                    yield self._key(name, path), f"code {code!r} is not a key of {member!r} in table {name}"
        outside: set[Path_] = set()
        for path, problem in self._outside_value_set(name):
            outside.add(path)
            yield self._key(name, path), problem
        if isinstance(table.get("value_set"), str):        # coded entries: the renderer needs all three parts
            for path, _code, _system, node in _coded(table, None):
                missing = [part for part in ("system", "display") if not (node or {}).get(part)]
                if missing and path not in outside:
                    yield self._key(name, path), (f"coded entry without {' or '.join(missing)} (give it, or make "
                                                  "the JDV files available to fill it)")

    def _outside_value_set(self, name: str) -> Iterator[tuple[Path_, str]]:
        declared = self._value_set(name)
        if declared is None:
            return
        try:
            jdv = value_set(declared, self.jdv_dir)
        except ValueSetError as exc:
            yield ("value_set",), str(exc)
            return
        for path, code, system, _node in _coded(self._tables[name], self._selectors(name)):
            if not jdv.contains(code, system or None):
                where = f" in code system {system}" if system else ""
                hint = f" (it is in code system {', '.join(jdv.systems(code))})" if jdv.contains(code) else ""
                yield path, f"code {code!r}{where} is not in {jdv.label}{hint}"

    def _value_set(self, name: str) -> str | None:
        declared = self._tables[name].get("value_set")
        if isinstance(declared, Mapping):
            declared = declared.get("id")
        return declared if isinstance(declared, str) and self.jdv_dir is not None else None

    def _selectors(self, name: str) -> list[str] | None:
        declared = self._tables[name].get("value_set")
        return list(declared.get("codes", [])) if isinstance(declared, Mapping) and "codes" in declared else None

    def _fill(self, name: str) -> None:
        """Give coded entries without ``system``/``display`` those of the JDV (when unambiguous)."""
        declared = self._value_set(name)
        if declared is None:
            return
        try:
            jdv = value_set(declared, self.jdv_dir)
        except ValueSetError:
            return                                       # reported by check()
        for _path, code, system, node in _coded(self._tables[name], self._selectors(name)):
            if node is None:
                continue
            if not system and len(jdv.systems(code)) == 1:
                node["system"] = system = jdv.systems(code)[0]
            if not node.get("display") and jdv.contains(code, system or None):
                node["display"] = jdv.display(code, system or None)

    def _key(self, name: str, path: Path_) -> str:
        dotted = ".".join(path)
        if any(path[:len(p)] == p for p in self._inline.get(name, ())):
            return f"{TABLES_KEY}.{name}.{dotted}"
        return f"{self._origins.get(name, name)}: {dotted}" if dotted else self._origins.get(name, name)


# --- helpers ------------------------------------------------------------------------------------

def _read_json(path: Path, key: str) -> dict[str, Any]:
    text = read_text(path, key, "a JSON table (UTF-8) of the same shape as mappings/codes/")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(key, f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(key, f"{path} must hold a JSON object")
    return data


def _is_coded(value: Any) -> bool:
    return isinstance(value, Mapping) and "code" in value


def _merge(target: dict[str, Any], entries: Mapping[str, Any], path: Path_, key: str, touched: set[Path_]) -> None:
    """Merge ``entries`` into ``target`` in place: mappings key by key, coded entries and scalars whole."""
    for name, value in entries.items():
        here, where = (*path, str(name)), f"{key}.{name}"
        current = target.get(name)
        if isinstance(value, Mapping) and not _is_coded(value):
            if current is not None and not isinstance(current, Mapping):
                raise ConfigError(where, f"expected {_kind(current)}, got a table")
            if current is None:
                target[name] = {}
            _merge(target[name], value, here, where, touched)
            continue
        if _is_coded(value) and not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(where, "a coded entry holds strings only (code, system, display)")
        if current is not None and _kind(current) != _kind(value):
            raise ConfigError(where, f"expected {_kind(current)}, got {_kind(value)}")
        target[name] = copy.deepcopy(dict(value)) if isinstance(value, Mapping) else copy.deepcopy(value)
        touched.add(here)


def _kind(value: Any) -> str:
    if _is_coded(value):
        return "a coded entry"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _coded(table: Mapping[str, Any], selectors: str | list[str] | None
           ) -> Iterator[tuple[Path_, str, str, dict[str, Any] | None]]:
    """(path, code, system, coded node or None) of the selected codes; every coded entry without selectors."""
    scheme = table.get("coding_scheme", "") if isinstance(table.get("coding_scheme"), str) else ""
    if selectors is None:
        yield from _walk(table, ())
        return
    for selector in [selectors] if isinstance(selectors, str) else selectors:
        for path, node in _select(table, selector.split("."), ()):
            if _is_coded(node):
                yield path, str(node["code"]), str(node.get("system", "") or scheme), node
            elif isinstance(node, str):
                yield path, node, scheme, None


def _walk(node: Any, path: Path_) -> Iterator[tuple[Path_, str, str, dict[str, Any] | None]]:
    if _is_coded(node):
        yield path, str(node["code"]), str(node.get("system", "")), node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            if not str(key).startswith("_") and (path or key not in ("value_set", "references")):
                yield from _walk(value, (*path, str(key)))


def _select(node: Any, parts: list[str], path: Path_) -> Iterator[tuple[Path_, Any]]:
    if not parts:
        yield path, node
        return
    head, rest = parts[0], parts[1:]
    if not isinstance(node, Mapping):
        return
    if head == "*":
        for key, value in node.items():
            yield from _select(value, rest, (*path, str(key)))
    elif head == "~":
        for key in node:
            yield (*path, str(key)), str(key)
    elif head in node:
        yield from _select(node[head], rest, (*path, head))
