"""Result tables of sweeps: one CSV row per finished cell (a direction, a seed, a setting),
written atomically as each cell ends, beside a JSON of the sweep's settings.

An interrupted sweep resumes at the first missing cell, and a cell already in the table is
never computed again. A damaged row (a truncated or garbled line, a file that is not a CSV) is
named, left out and computed again; a sweep made with other settings, or whose settings file is
damaged, is refused in one sentence.
"""
import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from .errors import UserError
from .io import save_json, save_text
from .provenance import git_commit, versions


def write_csv(path, rows, columns):
    """Write ``rows`` (dicts) under the header ``columns`` to ``path`` atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    save_text(path, buf.getvalue())


def _finite(text):
    try:
        return math.isfinite(float(text))
    except (TypeError, ValueError):
        return False


def read_rows(path):
    """The rows (dicts of strings) of a committed result table, for figures and summaries; a
    UserError when it is missing."""
    if not Path(path).is_file():
        raise UserError(f"the result table {path} is missing; run the command that writes it "
                        f"(see the docs page of its experiment)")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def median_range(values):
    """``values`` (results over seeds) as 'median (min-max)', two decimals."""
    v = np.asarray(values, dtype=float)
    return f"{np.median(v):.2f} ({v.min():.2f}-{v.max():.2f})"


class ResultTable:
    """The CSV at ``path`` with ``keys`` (the columns that name a cell) and ``values`` (numbers),
    and its settings at ``path`` with the suffix .json. ``check(row)``: an extra test of a row
    (e.g. an accuracy in [0, 1]); rows that fail it, or whose values are not finite numbers,
    are damaged. ``what``: what a cell is, for the messages ("directions")."""

    def __init__(self, path, keys, values, settings, check=None, what="cells"):
        self.path, self.keys, self.values = Path(path), list(keys), list(values)
        self.check, self.what = check, what
        self._settings(json.loads(json.dumps(settings)))
        self.rows = self._read()

    def _settings(self, settings):
        meta = self.path.with_suffix(".json")
        if not meta.is_file():
            save_json(meta, {"settings": settings, "versions": versions(),
                             "git_commit": git_commit()})
            return
        try:
            old = json.loads(meta.read_text())
        except (OSError, ValueError):
            raise UserError(f"the sweep's settings file {meta} is damaged, so the results beside "
                            f"it cannot be checked; delete {meta.parent} to start the sweep "
                            f"again, or write to another `results_dir`") from None
        if not isinstance(old, dict) or old.get("settings") != settings:
            raise UserError(f"{meta.parent} holds a sweep made with other settings ({meta}); "
                            f"delete that folder or pass another `results_dir`")

    def _whole(self, row):
        try:
            whole = all(row[k] not in (None, "") for k in self.keys) \
                and all(_finite(row[v]) for v in self.values)
        except KeyError:
            return False
        return whole and (self.check is None or bool(self.check(row)))

    def _read(self):
        if not self.path.is_file():
            return []
        try:
            with open(self.path, newline="") as f:
                rows = list(csv.DictReader(f))
        except (OSError, UnicodeDecodeError, csv.Error):
            rows = None
        if rows is None:
            print(f"{self.path} cannot be read as a CSV; its {self.what} are computed again")
            return []
        good = [r for r in rows if self._whole(r)]
        if len(good) < len(rows):
            print(f"discarding {len(rows) - len(good)} damaged row(s) of {self.path}; their "
                  f"{self.what} are computed again")
        return good

    def done(self):
        """The keys (tuples of strings) of the cells in the table."""
        return {tuple(str(r[k]) for k in self.keys) for r in self.rows}

    def todo(self, cells, key=tuple, progress=print):
        """The cells of ``cells`` not in the table yet (``key(cell)``: the values of its key
        columns), saying how many of them are there already."""
        done = self.done()
        todo = [c for c in cells if tuple(str(k) for k in key(c)) not in done]
        if len(todo) < len(cells):
            progress(f"resuming: {len(cells) - len(todo)} of {len(cells)} {self.what} already "
                     f"in {self.path}")
        return todo

    def add(self, rows):
        """Append ``rows`` (dicts with the keys and values) and write the table."""
        self.rows.extend(rows)
        write_csv(self.path, self.rows, self.keys + self.values)

    def as_strings(self):
        """Every row as a dict of strings (as read back from the CSV)."""
        return [{c: str(r[c]) for c in self.keys + self.values} for r in self.rows]
