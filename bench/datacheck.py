"""``kdbench data check``: is a real dataset there, where, and complete?

Each real-format dataset registers a checker in :data:`DATA_CHECKS` (a class with ``layout``,
``download``, :meth:`DataCheck.locate` and :meth:`DataCheck.check`), next to its loader in its task
package. A check reads the folder the user gives (``--data-root``), finds the dataset's own folder in
it (:meth:`DataCheck.locate`: the folder itself, or the dataset's usual subfolder) and reports what is
there against what the official release holds: present and complete, or what is missing, with the
expected layout and the official download page. The full-tier suite runs the same check before a
protocol and skips one whose data is incomplete, saying why.

The located folder is also what runs read (:func:`locate_data_root`): ``--data-root ~/data`` holding
``cifar-100-python/`` and ``imagenet/`` gives each protocol its own dataset's folder, so a record's
data fingerprint covers that dataset's files only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.registry import Registry

DATA_CHECKS = Registry("dataset with a data check")


@dataclass
class DataReport:
    """The outcome of one check: ``complete`` is True only when everything the official release holds
    is there (``problems`` empty)."""

    dataset: str
    root: Path  # the folder checked (the dataset's own folder when it was found)
    layout: str
    download: str
    found: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.problems

    def text(self) -> str:
        """The report for people: the verdict, what was found, what is missing, and where to get it."""
        verdict = "complete" if self.complete else "INCOMPLETE"
        lines = [f"{self.dataset} in {self.root}: {verdict}"]
        lines += [f"  found: {line}" for line in self.found]
        lines += [f"  missing: {line}" for line in self.problems]
        if not self.complete:
            lines += [f"  expected layout: {self.layout}", f"  official download: {self.download}"]
        return "\n".join(lines)

    def summary(self) -> str:
        """One line: why the data is not usable (the first problems), for a skip message."""
        more = len(self.problems) - 2
        shown = "; ".join(self.problems[:2]) + (f"; and {more} more" if more > 0 else "")
        return (f"{self.dataset} in {self.root} is incomplete ({shown}); `kdbench data check {self.dataset} "
                "--data-root ...` says more")


class DataCheck:
    """Base class of a dataset's checker; subclasses register with ``@DATA_CHECKS.register(name)``."""

    name: str = ""
    layout: str = ""
    download: str = ""

    def locate(self, root: Path) -> Path:
        """The dataset's own folder under ``root`` (``root`` itself when it is that folder or nothing
        better is found)."""
        return root

    def check(self, root: Path) -> DataReport:
        """What is in the dataset's folder against the official release."""
        raise NotImplementedError

    def report(self, root: Path) -> DataReport:
        return DataReport(self.name, root, self.layout, self.download)


def check_data(name: str, root: str | Path) -> DataReport:
    """Check dataset ``name`` under ``root``; an unknown name lists the datasets that have a check."""
    checker = DATA_CHECKS.get(name)()
    root = Path(root).expanduser()
    if not root.is_dir():
        report = checker.report(root)
        report.problems.append(f"{root} is not a folder")
        return report
    return checker.check(checker.locate(root))


def locate_data_root(name: str | None, root: str | None) -> str | None:
    """The folder a run of dataset ``name`` reads for ``--data-root root``: the dataset's own folder
    when it has a checker and ``root`` exists, else ``root`` unchanged."""
    if root is None or name is None or name not in DATA_CHECKS or not Path(root).is_dir():
        return root
    return str(DATA_CHECKS.get(name)().locate(Path(root).expanduser()))
