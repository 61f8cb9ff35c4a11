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
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.registry import PROTOCOLS

TIERS = ("smoke", "mini", "full")


#: learning-rate schedules of :class:`Schedule`: ``cosine`` decays to 0 over the run, step by step;
#: ``step`` multiplies the rate by ``gamma`` at each of the ``milestones`` (epochs), the recipe of
#: RepDistiller's CIFAR-100 table (x0.1 at 150, 180, 210 of 240) and of torchvision's ImageNet one;
#: ``poly`` decays as ``(1 - step / steps) ** 0.9``, the recipe of SKD, CWD and mmsegmentation.
LR_SCHEDULES = ("cosine", "step", "poly")
#: the fields added to :class:`Schedule` for the full tier (issue 13); at their default they are left
#: out of every hash (:func:`bench.identity.schedule_spec`), so protocols that do not set them keep theirs
SCHEDULE_OPTIONAL = ("lr_schedule", "milestones", "gamma", "lr_by_model", "drop_last")


@dataclass(frozen=True)
class Schedule:
    """Optimiser and schedule of one training run: SGD with momentum, and cosine, step or poly decay.

    ``lr_schedule="step"`` (with ``milestones`` in epochs and ``gamma``) is the multi-step decay of
    RepDistiller's ``adjust_learning_rate`` (``lr * gamma ** #{milestones passed}``); ``lr_by_model``
    gives some architectures their own base rate (the CIFAR-100 recipe trains MobileNetV2 and the
    ShuffleNets at 0.01 instead of 0.05, Tian et al. 2020, CRD, section 4.1): :meth:`lr_for` is the
    rate of the model being trained, teacher, assistant or student alike.
    """

    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    lr_schedule: str = "cosine"
    #: epochs after which the rate is multiplied by ``gamma`` (``step`` only), strictly increasing
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    #: ``((model name, lr), ...)``: base rates overriding ``lr`` for these architectures (kept sorted)
    lr_by_model: tuple[tuple[str, float], ...] = ()
    #: drop each epoch's last partial batch (the generated tiers); ``False`` trains on it too, as
    #: torch's ``DataLoader`` does by default in RepDistiller's and torchvision's recipes (50,000 CIFAR
    #: images at batch 64: 782 steps, the last of 16 images, rather than 781)
    drop_last: bool = True

    def __post_init__(self) -> None:
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"schedule: key 'lr_schedule' must be one of {', '.join(LR_SCHEDULES)}, "
                              f"got {self.lr_schedule!r}")
        milestones = tuple(self.milestones)
        if self.lr_schedule == "step":
            if not milestones:
                raise ConfigError("schedule: key 'milestones' is empty; lr_schedule 'step' needs the epochs "
                                  "at which the rate decays, e.g. [150, 180, 210]")
            if any(isinstance(m, bool) or not isinstance(m, int) for m in milestones):
                raise ConfigError(f"schedule: key 'milestones' must hold whole epochs, got {list(milestones)}")
            if any(b <= a for a, b in zip(milestones, milestones[1:], strict=False)):
                raise ConfigError(f"schedule: key 'milestones' must be strictly increasing, got {list(milestones)}")
            if not 0 < milestones[0] or not milestones[-1] < self.epochs:
                raise ConfigError(f"schedule: key 'milestones' must lie within 1..{self.epochs - 1} "
                                  f"(epochs is {self.epochs}), got {list(milestones)}")
            if not self.gamma > 0:
                raise ConfigError(f"schedule: key 'gamma' must be > 0, got {self.gamma!r}")
        else:
            for key, default in (("milestones", ()), ("gamma", 0.1)):
                if (milestones if key == "milestones" else self.gamma) != default:
                    raise ConfigError(f"schedule: key {key!r} applies only to lr_schedule 'step' "
                                      f"(lr_schedule is {self.lr_schedule!r})")
        if not isinstance(self.drop_last, bool):
            raise ConfigError(f"schedule: key 'drop_last' must be true or false, got {self.drop_last!r}")
        object.__setattr__(self, "milestones", milestones)
        object.__setattr__(self, "lr_by_model", _lr_table(self.lr_by_model))

    def lr_for(self, model_name: str) -> float:
        """The base learning rate of architecture ``model_name``: its ``lr_by_model`` entry, else ``lr``."""
        return dict(self.lr_by_model).get(model_name, self.lr)

    def resolved(self, model_name: str) -> Schedule:
        """This schedule as it trains ``model_name``: ``lr`` set to :meth:`lr_for`, ``lr_by_model`` empty.
        What determines that model's weights, so what a teacher's recipe hash holds."""
        return dataclasses.replace(self, lr=self.lr_for(model_name), lr_by_model=())


def _lr_table(table: Any) -> tuple[tuple[str, float], ...]:
    """``lr_by_model`` in its canonical form, sorted by model name (a mapping or pairs accepted)."""
    pairs = list(table.items()) if isinstance(table, dict) else list(table)
    result = []
    for pair in pairs:
        if isinstance(pair, str) or len(pair) != 2:
            raise ConfigError(f"schedule: key 'lr_by_model' must map model names to learning rates, got {pair!r}")
        name, lr = pair
        if not isinstance(name, str) or isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
            raise ConfigError(f"schedule: key 'lr_by_model' entry {name!r}: the learning rate must be a number "
                              f"> 0, got {lr!r}")
        result.append((name, float(lr)))
    names = [name for name, _ in result]
    if len(set(names)) != len(names):
        raise ConfigError(f"schedule: key 'lr_by_model' names a model twice: {sorted(names)}")
    return tuple(sorted(result))


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
    #: ``(mean, std)`` per channel of [0, 1] pixels, e.g. CIFAR-100's ((0.5071, 0.4867, 0.4408),
    #: (0.2675, 0.2565, 0.2761)) as RepDistiller's ``dataset/cifar100.py`` normalises; empty: the task's default.
    normalization: tuple[tuple[float, ...], tuple[float, ...]] = ()
    #: the teacher is this file of the user's, never trained by the suite (e.g. torchvision's
    #: ``resnet34-b627a593.pth``, whose name pins the first hex digits of its sha256: a run needs
    #: ``--teacher`` or ``--teacher-dir``, and a file whose sha256 does not start so is refused);
    #: empty means the suite trains ``teacher`` (or the user gives a file). Left out of the hash when empty.
    teacher_file: str = ""
    #: how many stages (``stage1``..``stage<n>``) the stage-reading methods read of both models: the
    #: ``stages`` hyperparameter of every method that has one (RepDistiller reads ``feat[1:-1]``, all of
    #: them: 4 for vgg, MobileNetV2 and ResNet50, 3 for the CIFAR ResNets, WRNs and ShuffleNets); a
    #: method override or the user's hparams still win. 0: the methods' default (3). Left out of the hash
    #: when 0.
    feature_stages: int = 0
    #: on CUDA, run cuDNN deterministically (``cudnn.deterministic``, no autotuning, torch's deterministic
    #: algorithms where they exist) so that a seed repeats on the same GPU; False: cuDNN's benchmark mode
    #: (autotuned, faster, not bitwise repeatable). No effect on the CPU. The record's provenance says which
    #: settings a run had. Left out of the hash when False.
    deterministic: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "normalization", _normalization(self.name, self.normalization))
        _check_lr_models(self)
        if self.tier not in TIERS:
            raise ConfigError(f"protocol {self.name!r}: key 'tier' must be one of {TIERS}, got {self.tier!r}")
        if self.primary_metric not in self.metrics:
            raise ConfigError(
                f"protocol {self.name!r}: key 'primary_metric' {self.primary_metric!r} is not in 'metrics'")
        if not self.seeds:
            raise ConfigError(f"protocol {self.name!r}: key 'seeds' is empty")
        if len(self.ensemble) == 1:
            raise ConfigError(f"protocol {self.name!r}: key 'ensemble' needs at least 2 teachers, got 1")
        if self.feature_stages != int(self.feature_stages) or self.feature_stages < 0:
            raise ConfigError(f"protocol {self.name!r}: key 'feature_stages' must be a whole number >= 0 "
                              f"(0: the methods' default), got {self.feature_stages!r}")
        if not isinstance(self.deterministic, bool):
            raise ConfigError(f"protocol {self.name!r}: key 'deterministic' must be true or false, "
                              f"got {self.deterministic!r}")
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
        """Versioned identifier used in result records and tables, e.g. ``classification-mini@v1``.

        A protocol run on a real dataset (:func:`derive_protocol`) is named ``<base>+<dataset>`` and
        keeps its base's version, e.g. ``detection-smoke+coco@v1``; its hash tells it from the base.
        """
        return f"{self.name}@v{self.version}"

    @property
    def short_hash(self) -> str:
        return self.spec_hash[:12]

    def with_seeds(self, seeds: tuple[int, ...]) -> Protocol:
        """The same protocol run on other seeds (seeds are not part of a record's identity)."""
        return dataclasses.replace(self, seeds=tuple(seeds))


def _normalization(name: str, value: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``normalization`` in its canonical form (tuples of floats), or a ConfigError naming the key."""
    if not value:
        return ()
    where = f"protocol {name!r}: key 'normalization'"
    try:
        mean, std = (tuple(float(v) for v in part) for part in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be [mean, std], each a list of per-channel numbers, got {value!r}") from None
    if not mean or len(mean) != len(std):
        raise ConfigError(f"{where}: mean and std need one value per channel each, got {len(mean)} and {len(std)}")
    if not all(s > 0 for s in std):
        raise ConfigError(f"{where}: every std must be > 0, got {list(std)}")
    return mean, std


def _check_lr_models(protocol: Protocol) -> None:
    """Every ``lr_by_model`` name of the protocol's schedules must be a registered model (checked once
    the plugins are loaded: a protocol built while they load is checked again when looked up)."""
    from bench.registry import MODELS, plugins_loaded

    if not plugins_loaded():
        return
    schedules = {"schedule": protocol.schedule, "teacher.schedule": protocol.teacher.schedule,
                 **{f"ensemble[{i}].schedule": r.schedule for i, r in enumerate(protocol.ensemble)}}
    for where, schedule in schedules.items():
        for model, _ in schedule.lr_by_model:
            if model not in MODELS:
                raise ConfigError(f"protocol {protocol.name!r}: key '{where}.lr_by_model' names {model!r}, which "
                                  f"is not a registered model; valid: {', '.join(MODELS.names())}")


def from_dict(data: dict[str, Any]) -> Protocol:
    """Build a protocol from plain data, naming any key that does not exist."""
    data = dict(data)
    _check_keys("protocol", data, {f.name for f in dataclasses.fields(Protocol)})
    try:
        schedule = data["schedule"]
        teacher = dict(data["teacher"])
    except KeyError as exc:
        raise ConfigError(f"protocol: missing key {exc.args[0]!r}") from None
    _check_keys("protocol.teacher", teacher, {f.name for f in dataclasses.fields(TeacherRecipe)})
    data["schedule"] = schedule_from_dict("protocol.schedule", schedule)
    teacher["schedule"] = schedule_from_dict("protocol.teacher.schedule", teacher["schedule"])
    data["teacher"] = TeacherRecipe(**teacher)
    members = []
    for i, member in enumerate(data.get("ensemble", ())):
        member = dict(member)
        _check_keys(f"protocol.ensemble[{i}]", member, {f.name for f in dataclasses.fields(TeacherRecipe)})
        schedule = schedule_from_dict(f"protocol.ensemble[{i}].schedule", member["schedule"])
        members.append(TeacherRecipe(**{**member, "schedule": schedule}))
    data["ensemble"] = tuple(members)
    data["assistants"] = tuple(data.get("assistants", ()))
    data["assistant_sweep"] = tuple(data.get("assistant_sweep", ()))
    data["metrics"] = tuple(data["metrics"])
    data["seeds"] = tuple(data["seeds"])
    try:
        return Protocol(**data)
    except TypeError as exc:
        raise ConfigError(f"protocol: {exc}") from None


def schedule_from_dict(where: str, data: dict[str, Any]) -> Schedule:
    """A :class:`Schedule` from plain data (JSON lists become tuples); errors name the key as ``where.key``."""
    _check_keys(where, data, {f.name for f in dataclasses.fields(Schedule)})
    try:
        return Schedule(**data)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(f"{where}:{message.removeprefix('schedule:')}" if message.startswith("schedule:")
                          else message) from None


def _check_keys(where: str, data: dict[str, Any], valid: set[str]) -> None:
    unknown = sorted(set(data) - valid)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(valid))}")


#: The real-format datasets each task reads instead of its generated one (``kdbench run --dataset``),
#: with the layout each expects under ``--data-root``.
REAL_DATASETS: dict[str, dict[str, str]] = {
    "classification": {
        "cifar10": "<root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta} (the python version)",
        "cifar100": "<root>/cifar-100-python/{train, test, meta} (the python version)",
        "imagefolder": "<root>/train/<class>/<images> and <root>/test/<class>/<images> (<root>/val/ optional)",
        "imagenet": "<root>/train/<wnid>/*.JPEG and <root>/val/<wnid>/*.JPEG (ILSVRC-2012, val sorted into the "
                    "class folders; <root>/imagenet/ also found)",
    },
    "detection": {
        "coco": "<root>/annotations/instances_{train2017,val2017}.json and the images in <root>/{train2017,val2017}/",
    },
    "segmentation": {
        "cityscapes": "<root>/leftImg8bit/{train,val}/<city>/<name>_leftImg8bit.png and "
                      "<root>/gtFine/{train,val}/<city>/<name>_gtFine_labelTrainIds.png",
        "voc": "<root>/ImageSets/Segmentation/{train,val}.txt, <root>/JPEGImages/<id>.jpg and "
               "<root>/SegmentationClass/<id>.png",
    },
    "pose": {
        "coco_keypoints": "<root>/annotations/person_keypoints_{train2017,val2017}.json and the images in "
                          "<root>/{train2017,val2017}/",
    },
}
#: every dataset name of :data:`REAL_DATASETS`: the ones that read ``--data-root``
DATASETS_READING_A_ROOT = frozenset(name for names in REAL_DATASETS.values() for name in names)
#: joins a base protocol's name and a real dataset's in a derived protocol's name
DERIVED_SEPARATOR = "+"


def derive_protocol(base: Protocol, dataset: str) -> Protocol:
    """``base`` with the real-format ``dataset`` of its task in place of its generated data.

    The derived protocol keeps everything else (models, schedule, seeds, metrics, version) and is
    named ``<base>+<dataset>`` (key e.g. ``detection-smoke+coco@v1``); its dataset spec, hence its
    hash, differs, so its records, teachers and tables never mix with the generated data's. Its
    name alone rebuilds it (:func:`get_protocol`), so suite workers, ``verify-record`` and the
    gate resolve it like any registered protocol. An unknown dataset lists the task's valid ones.
    """
    if base.dataset.get("name") in DATASETS_READING_A_ROOT:
        raise ConfigError(f"protocol {base.key!r} already reads the real dataset {base.dataset['name']!r}; "
                          f"derive from its generated base {base.name.split(DERIVED_SEPARATOR)[0]!r} instead")
    valid = REAL_DATASETS.get(base.task, {})
    if dataset not in valid:
        raise ConfigError(f"dataset {dataset!r} is not a real dataset of task {base.task!r} (protocol "
                          f"{base.key!r}); valid: {', '.join(valid) or '(none)'}")
    return dataclasses.replace(
        base, name=f"{base.name}{DERIVED_SEPARATOR}{dataset}", dataset={"name": dataset},
        description=f"{base.key} with the real dataset {dataset!r} (read from --data-root) in place of "
                    f"{base.dataset.get('name')!r}; models, schedule and seeds unchanged.")


def protocol_for_data(protocol: Protocol, dataset: str | None, data_root: str | None) -> Protocol:
    """What ``--dataset`` and ``--data-root`` make of ``protocol``: itself, or :func:`derive_protocol`.

    Every problem is raised here, before any data is read: an unknown name lists the task's valid
    ones, a missing ``--data-root`` names the layout expected, and ``--data-root`` on a protocol
    whose generated dataset cannot read it asks for ``--dataset``.
    """
    valid = REAL_DATASETS.get(protocol.task, {})
    if dataset is None or dataset == protocol.dataset.get("name"):
        if data_root is not None and protocol.dataset.get("name") not in DATASETS_READING_A_ROOT:
            raise ConfigError(f"protocol {protocol.key!r} uses the generated dataset {protocol.dataset.get('name')!r}, "
                              f"which reads no --data-root; give --dataset NAME to read {data_root} instead "
                              f"(for task {protocol.task!r}: {', '.join(valid) or '(none)'})")
        derived = protocol
    else:
        derived = derive_protocol(protocol, dataset)
    name = derived.dataset.get("name")
    if name in DATASETS_READING_A_ROOT:
        if data_root is None:
            raise ConfigError(f"--dataset {name}: give its folder with --data-root; expected layout: {valid[name]}")
        if not Path(data_root).is_dir():
            raise ConfigError(f"--data-root {data_root} is not a folder; expected layout for {name}: {valid[name]}")
    return derived


def get_protocol(name: str) -> Protocol:
    """The registered protocol ``name``, or ``<base>+<dataset>`` (:func:`derive_protocol`); unknown names
    list the valid ones."""
    base, sep, dataset = name.partition(DERIVED_SEPARATOR)
    protocol = PROTOCOLS.get(base)()
    return derive_protocol(protocol, dataset) if sep else protocol


def protocols_of_tier(tier: str) -> list[Protocol]:
    if tier not in TIERS:
        raise ConfigError(f"unknown tier {tier!r}; valid tiers: {', '.join(TIERS)}")
    found = [get_protocol(n) for n in PROTOCOLS.names()]
    return [p for p in found if p.tier == tier]
