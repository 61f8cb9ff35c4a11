"""Protocol: the frozen, versioned, hashed specification of one benchmark track.

A protocol holds everything that makes two numbers comparable: task, dataset
and split, teacher recipe, student architecture, schedule, optimizer,
augmentation, metric, seeds and a version. Its :attr:`Protocol.spec_hash` is the
sha256 of its canonical JSON, recorded in every result; results of different
versions (or hashes) never share a table.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from bench.errors import ConfigError
from bench.registry import PROTOCOLS

TIERS = ("smoke", "mini", "full")


@dataclass(frozen=True)
class Schedule:
    """Optimiser and schedule of one training run (SGD with momentum, cosine decay)."""

    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True


@dataclass(frozen=True)
class TeacherRecipe:
    """How the suite trains a teacher: its model and its schedule (and the seed)."""

    model: str
    schedule: Schedule
    seed: int = 0


@dataclass(frozen=True)
class Protocol:
    """A frozen benchmark track; see the module docstring."""

    name: str
    task: str
    tier: str
    version: int
    dataset: dict[str, Any]
    student: str
    teacher: TeacherRecipe
    schedule: Schedule
    augmentation: str
    metrics: tuple[str, ...]
    primary_metric: str
    seeds: tuple[int, ...]
    threads: int = 1
    description: str = ""
    method_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the teachers of multi-teacher methods (``mt-*``, ``ca-mkd``), each trained by the suite and cached;
    #: empty means the protocol has no ensemble track.
    ensemble: tuple[TeacherRecipe, ...] = ()
    #: the teacher-assistant chain of ``takd`` (teacher -> assistants[0] -> ... -> student), model names of
    #: the task's family, each strictly between its neighbours in size; empty means no TAKD track.
    assistants: tuple[str, ...] = ()
    #: assistant sizes tried by ``kdbench sweep`` (one-assistant chains), smallest first.
    assistant_sweep: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.tier not in TIERS:
            raise ConfigError(f"protocol {self.name!r}: key 'tier' must be one of {TIERS}, got {self.tier!r}")
        if self.primary_metric not in self.metrics:
            raise ConfigError(
                f"protocol {self.name!r}: key 'primary_metric' {self.primary_metric!r} is not in 'metrics'")
        if not self.seeds:
            raise ConfigError(f"protocol {self.name!r}: key 'seeds' is empty")
        if len(self.ensemble) == 1:
            raise ConfigError(f"protocol {self.name!r}: key 'ensemble' needs at least 2 teachers, got 1")
        if len(set(self.ensemble)) != len(self.ensemble):
            raise ConfigError(f"protocol {self.name!r}: key 'ensemble' lists the same teacher recipe twice")

    # -- identity ---------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def spec_hash(self) -> str:
        """sha256 of the canonical JSON of every field but the description and the seed list.

        Seeds are recorded per result, so running extra seeds keeps the hash. The
        fields added for issue 7 (``ensemble``, ``assistants``, ``assistant_sweep``)
        enter the hash only when set, so protocols without them keep their hash.
        """
        from bench.identity import protocol_spec, sha256_json

        return sha256_json(protocol_spec(self))

    @property
    def key(self) -> str:
        """Versioned identifier used in result records and tables, e.g. ``classification-mini@v1``."""
        return f"{self.name}@v{self.version}"

    @property
    def short_hash(self) -> str:
        return self.spec_hash[:12]

    def with_seeds(self, seeds: tuple[int, ...]) -> Protocol:
        """The same protocol run on other seeds (seeds are not part of a record's identity)."""
        return dataclasses.replace(self, seeds=tuple(seeds))


def from_dict(data: dict[str, Any]) -> Protocol:
    """Build a protocol from plain data, naming any key that does not exist."""
    data = dict(data)
    _check_keys("protocol", data, {f.name for f in dataclasses.fields(Protocol)})
    try:
        schedule = data["schedule"]
        teacher = dict(data["teacher"])
    except KeyError as exc:
        raise ConfigError(f"protocol: missing key {exc.args[0]!r}") from None
    _check_keys("protocol.schedule", schedule, {f.name for f in dataclasses.fields(Schedule)})
    _check_keys("protocol.teacher", teacher, {f.name for f in dataclasses.fields(TeacherRecipe)})
    _check_keys("protocol.teacher.schedule", teacher["schedule"], {f.name for f in dataclasses.fields(Schedule)})
    data["schedule"] = Schedule(**schedule)
    teacher["schedule"] = Schedule(**teacher["schedule"])
    data["teacher"] = TeacherRecipe(**teacher)
    members = []
    for i, member in enumerate(data.get("ensemble", ())):
        member = dict(member)
        _check_keys(f"protocol.ensemble[{i}]", member, {f.name for f in dataclasses.fields(TeacherRecipe)})
        _check_keys(f"protocol.ensemble[{i}].schedule", member["schedule"],
                    {f.name for f in dataclasses.fields(Schedule)})
        members.append(TeacherRecipe(**{**member, "schedule": Schedule(**member["schedule"])}))
    data["ensemble"] = tuple(members)
    data["assistants"] = tuple(data.get("assistants", ()))
    data["assistant_sweep"] = tuple(data.get("assistant_sweep", ()))
    data["metrics"] = tuple(data["metrics"])
    data["seeds"] = tuple(data["seeds"])
    try:
        return Protocol(**data)
    except TypeError as exc:
        raise ConfigError(f"protocol: {exc}") from None


def _check_keys(where: str, data: dict[str, Any], valid: set[str]) -> None:
    unknown = sorted(set(data) - valid)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(valid))}")


def get_protocol(name: str) -> Protocol:
    """The registered protocol ``name`` (unknown names list the valid ones)."""
    return PROTOCOLS.get(name)()


def protocols_of_tier(tier: str) -> list[Protocol]:
    if tier not in TIERS:
        raise ConfigError(f"unknown tier {tier!r}; valid tiers: {', '.join(TIERS)}")
    found = [get_protocol(n) for n in PROTOCOLS.names()]
    return [p for p in found if p.tier == tier]
