"""Teacher zoo: teachers trained by the suite from a recipe, or loaded from a user file.

A suite-trained teacher is cached under ``<cache>/teachers/<key>.pt`` as a
state dict (weights only) with a JSON sidecar holding its sha256, recipe, test
metrics and training time. The key (:meth:`TeacherZoo.paths`) is the sha256 of
the recipe hash (task, dataset spec, the data's fingerprint, augmentation,
threads, the teacher recipe: :func:`recipe_hash`) and of the digest of the code
that trains it (:func:`bench.identity.training_code_digest`: engine, teachers,
distiller, the task package with its models), so a teacher trained on other
data or by other code is never reused. Assistants are keyed the same way
(:func:`assistant_hash`, their recipe: who taught them, on what data, with what KD; the cache key
adds the digest of the training code and the ``kd`` method's). The repository's shipped files are
looked up by the recipe alone, teachers' and assistants' alike, so a change of the training code does
not orphan them (``kdbench teachers verify`` says whether today's code still reproduces them).

Loading re-checks the sidecar's own digest and the weights' sha256 and uses
``torch.load(..., weights_only=True)``; a cached file that fails (edited,
truncated, unreadable) is retrained with a warning. A user's teacher file that
fails stops the run before any training, and the error never suggests loading
it other than weights-only.

A user's file may hold a bare state dict (torchvision's files) or a reference
checkpoint with the state dict under ``"model"`` (RepDistiller, mdistiller) or
``"state_dict"`` (:func:`read_state_dict`); keys are never renamed. A file of
another architecture is reported with the name of the registered model it
matches (:func:`identify_architecture`). Files named the torchvision way pin
their sha256 by a prefix in the name (:func:`sha256_pinned_by_name`).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import warnings

import torch
from torch import nn

from bench.errors import TeacherMismatchError
from bench.identity import json_ready, schedule_spec, sha256_json, training_code_digest
from bench.paths import CacheIntegrityWarning, atomic_save, atomic_write_text, cache_dir, sha256_file
from bench.protocol import Protocol, TeacherRecipe
from bench.shipped_teachers import shipped_file, shipped_root, unusable
from bench.task import Split, Task


@dataclass
class Teacher:
    """A frozen-ready teacher model with where it came from."""

    model: nn.Module
    model_name: str
    sha256: str
    source: str  # "zoo" (trained and cached by the suite), "file", or "assistant" (trained by KD, cached)
    metrics: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    path: str = ""
    #: the class names it predicts, in output order (None: not recorded, e.g. a user file)
    classes: tuple[str, ...] | None = None
    seed: int | None = None
    #: the recipe key that names a suite-trained teacher (:func:`recipe_hash`, an assistant's
    #: :func:`assistant_hash`); empty for a user's file
    recipe_key: str = ""
    #: loaded from the repository's shipped teachers (:mod:`bench.shipped_teachers`), not trained here
    shipped: bool = False

    def describe(self) -> dict[str, Any]:
        described = {
            "model": self.model_name, "sha256": self.sha256, "source": self.source,
            "metrics": self.metrics, "train_seconds": self.train_seconds, "seed": self.seed,
        }
        if self.shipped:  # said only when so: records of trained teachers keep their shape
            described["shipped"] = True
        return described


def recipe_hash(protocol: Protocol, data: str, recipe: TeacherRecipe | None = None) -> str:
    """Hash of what determines a teacher's weights: task, dataset spec, the data's fingerprint
    ``data`` (:func:`bench.identity.data_fingerprint`), augmentation, threads and the recipe.

    ``recipe`` defaults to the protocol's teacher; ensemble members pass their own. This hash
    names a zoo teacher in a record's identity; the cache file is keyed by it and the code digest.
    """
    recipe = recipe or protocol.teacher
    spec = {
        "task": protocol.task,
        "dataset": protocol.dataset,
        "data": data,
        "augmentation": protocol.augmentation,
        "threads": protocol.threads,
        # the schedule as it trains this model (its own lr), the full-tier fields only when set
        "teacher": {**dataclasses.asdict(recipe), "schedule": schedule_spec(recipe.schedule.resolved(recipe.model))},
        **_normalization_spec(protocol),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _normalization_spec(protocol: Protocol) -> dict[str, Any]:
    """The protocol's input normalisation for a recipe hash, when it sets one (it changes the weights)."""
    return {"normalization": protocol.normalization} if protocol.normalization else {}


def assistant_hash(protocol: Protocol, model_name: str, taught_by: str, kd_hparams: dict[str, Any],
                   data: str) -> str:
    """Hash of an assistant's recipe: the data (spec and fingerprint), its model, the sha256 of the model
    that taught it, the schedule (the protocol's student schedule), the KD hyperparameters and the seed.
    Like :func:`recipe_hash` it leaves the code out (the cache key adds it, :meth:`TeacherZoo.assistant`);
    until 2026-12-03 it held the code digest too, which orphaned the shipped assistants at every change
    of the training code."""
    spec = {
        "task": protocol.task,
        "dataset": protocol.dataset,
        "data": data,
        "augmentation": protocol.augmentation,
        "threads": protocol.threads,
        "assistant": model_name,
        "taught_by": taught_by,
        "schedule": schedule_spec(protocol.schedule.resolved(model_name)),
        "kd": kd_hparams,
        "seed": protocol.teacher.seed,
        **_normalization_spec(protocol),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def label_space_keys(task: Task, model_name: str, num_classes: int) -> dict[str, int]:
    """State-dict keys whose shape depends on the number of classes (the classifier's), each with
    the dimension that counts the classes."""
    a = task.build_model(model_name, num_classes).state_dict()
    b = task.build_model(model_name, num_classes + 1).state_dict()
    keys = {}
    for k in a:
        if k in b and a[k].shape != b[k].shape and a[k].dim() == b[k].dim():
            keys[k] = next(d for d in range(a[k].dim()) if a[k].shape[d] != b[k].shape[d])
    return keys


def check_label_space(teacher: Teacher, classes: tuple[str, ...], where: str) -> None:
    """Stop with a clear message if ``teacher`` predicts other classes than the protocol's dataset."""
    if teacher.classes is not None and tuple(teacher.classes) != tuple(classes):
        raise TeacherMismatchError(
            f"{where} ({teacher.model_name}, {teacher.path or teacher.source}) has a different label space: "
            f"it predicts {len(teacher.classes)} classes ({_preview(teacher.classes)}), the protocol's dataset "
            f"has {len(classes)} ({_preview(classes)}); all teachers must share the student's label space")


def _preview(names: tuple[str, ...]) -> str:
    shown = ", ".join(map(str, names[:4]))
    return shown + (", ..." if len(names) > 4 else "")


#: where reference training scripts keep the state dict inside a checkpoint dict: RepDistiller's
#: ``train_teacher.py`` and mdistiller save ``{"model": state_dict, "epoch": ..., "optimizer": ...}``;
#: others (e.g. PyTorch Lightning) use ``"state_dict"``. A bare state dict (torchvision's files) is kept.
STATE_DICT_KEYS = ("model", "state_dict")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The state dict stored in ``path``, loaded weights-only: a bare state dict, or the one under one of
    :data:`STATE_DICT_KEYS` in a checkpoint dict.

    The unpickler may also rebuild :class:`argparse.Namespace` (RepDistiller's ``*_last.pth`` keeps its
    options under ``"opt"``): it holds plain attributes and runs no code; whatever it holds is still
    checked as weights-only.
    """
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise TeacherMismatchError(
            f"teacher file {path} is not a weights-only state dict ({_load_failure(exc)}); KDBench loads "
            "teachers weights-only and never runs code from a file: save the weights with "
            "torch.save(model.state_dict(), path)") from None
    if isinstance(state, dict) and not all(isinstance(v, torch.Tensor) for v in state.values()):
        inner = next((state[k] for k in STATE_DICT_KEYS if isinstance(state.get(k), dict)), None)
        if inner is None:
            raise TeacherMismatchError(
                f"teacher file {path} holds a dict with keys {sorted(map(str, state))[:6]} but no state dict "
                f"(expected tensors, or a state dict under one of {list(STATE_DICT_KEYS)})")
        state = inner
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TeacherMismatchError(f"teacher file {path} does not hold a state dict")
    return state


def load_state_dict_checked(model: nn.Module, path: Path, expected_sha256: str | None,
                            model_name: str | None = None) -> str:
    """Load weights from ``path`` (see :func:`read_state_dict`) into ``model`` after checking the file's
    sha256; return the hash. ``model_name`` (the architecture the run expects) lets a file of another
    architecture be reported with both names."""
    if not path.is_file():
        raise TeacherMismatchError(f"teacher file {path} does not exist")
    actual = sha256_file(path)
    if expected_sha256 and actual != expected_sha256.strip().lower():
        raise TeacherMismatchError(
            f"teacher file {path}: sha256 {actual} does not match the expected {expected_sha256}"
        )
    state = read_state_dict(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        detail = []
        if missing:
            detail.append(f"missing {missing[:3]}")
        if unexpected:
            detail.append(f"unexpected {unexpected[:3]}")
        if wrong:
            k = wrong[0]
            detail.append(f"shape of {k!r} is {tuple(state[k].shape)}, the model expects {tuple(expected[k].shape)}")
        if model_name is None:
            raise TeacherMismatchError(f"teacher file {path} does not fit the model: {'; '.join(detail)}")
        holds = identify_architecture(state)
        if holds:
            raise TeacherMismatchError(
                f"teacher file {path} holds a {' or '.join(holds)} state dict; the protocol expects {model_name} "
                f"({'; '.join(detail)})")
        raise TeacherMismatchError(f"teacher file {path} does not fit {model_name} ({'; '.join(detail)}); "
                                   "its keys and shapes match no registered model")
    model.load_state_dict(state)
    return actual


def identify_architecture(state: dict[str, torch.Tensor]) -> list[str]:
    """The registered models whose state dicts have exactly ``state``'s keys and shapes, for any number
    of classes (the class-count dimension of the classifier is left free).

    Models are built on the ``meta`` device (no memory, no initialisation cost); a model that cannot be
    built that way, or with ``num_classes`` alone, is skipped.
    """
    from bench.registry import MODELS

    shapes = {k: tuple(v.shape) for k, v in state.items()}
    found = []
    for name in MODELS.names():
        try:
            with torch.device("meta"):
                a = MODELS.get(name)(num_classes=2).state_dict()
                if set(a) != set(shapes):
                    continue
                b = MODELS.get(name)(num_classes=3).state_dict()
        except Exception:  # noqa: BLE001 - a model that needs more than num_classes is not a candidate
            continue
        if all(_fits(shapes[k], a[k].shape, b[k].shape) for k in a):
            found.append(name)
    return found


def _fits(shape: tuple[int, ...], at2: torch.Size, at3: torch.Size) -> bool:
    """``shape`` is a tensor's shape in a model built for 2 classes (``at2``) and for 3 (``at3``), except in
    the dimensions that count the classes (where the two builds differ)."""
    return len(shape) == len(at2) and all(s == x or x != y for s, x, y in zip(shape, at2, at3, strict=True))


def sha256_pinned_by_name(path: Path) -> str:
    """Check a file named the torchvision / ``torch.hub`` way, ``<name>-<hex>.<ext>`` (e.g.
    ``resnet34-b627a593.pth``), whose part after the last ``-`` is a prefix of its sha256; return the
    full sha256. A name without such a part, or a prefix that does not match, is an error naming both."""
    base = path.name.split(".")[0]
    prefix = base.rsplit("-", 1)[1].lower() if "-" in base else ""
    if not (6 <= len(prefix) <= 64 and all(c in "0123456789abcdef" for c in prefix)):
        raise TeacherMismatchError(
            f"teacher file {path}: its name does not pin a sha256 (expected <name>-<hex prefix of the sha256>."
            f"<ext>, as torchvision names its files, e.g. resnet34-b627a593.pth)")
    if not path.is_file():
        raise TeacherMismatchError(f"teacher file {path} does not exist")
    actual = sha256_file(path)
    if not actual.startswith(prefix):
        raise TeacherMismatchError(
            f"teacher file {path}: its name pins a sha256 starting {prefix}, the file's sha256 is {actual} "
            "(a different or damaged download)")
    return actual


def _load_failure(exc: Exception) -> str:
    """Why torch could not load a file, without torch's advice to retry with ``weights_only=False``
    (which would run any code the file holds): its "WeightsUnpickler error" line, else its first
    line, else the exception's type."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = next((line for line in lines if line.startswith("WeightsUnpickler error")), lines[0] if lines else "")
    if not reason or "weights_only" in reason:
        return type(exc).__name__
    return reason


class TeacherZoo:
    """Train-or-load teachers keyed by their recipe hash (assistants by theirs): the repository's shipped
    file for the recipe if there is one (:mod:`bench.shipped_teachers`), else the cache, else trained now."""

    def __init__(self, root: Path | None = None, shipped: bool = True, device: str | torch.device = "cpu"):
        self.root = Path(root) if root else cache_dir() / "teachers"
        self.shipped_root = shipped_root() if shipped else None
        #: where the teachers are trained and evaluated and where the returned models live (their files
        #: always hold CPU tensors, so a teacher trained on a GPU loads anywhere)
        self.device = torch.device(device)

    def _shipped(self, task: Task, splits: dict[str, Split], model_name: str, key: str,
                 source: str) -> Teacher | None:
        """The shipped teacher of recipe ``key``, when one is shipped and intact."""
        found = shipped_file(key, self.shipped_root) if self.shipped_root is not None else None
        if found is None:
            return None
        path, entry = found
        classes = tuple(splits["train"].classes)
        model = task.build_model(model_name, len(classes))
        try:  # one read and one hash: the check against the manifest's sha256 is the load's own
            sha = load_state_dict_checked(model, path, entry["sha256"], model_name)
        except TeacherMismatchError as exc:
            unusable(path, entry, str(exc))
            return None
        teacher = Teacher(model.to(self.device), model_name, sha, source, entry["metrics"], entry["train_seconds"],
                          str(path), tuple(entry["classes"]), recipe_key=key, shipped=True)
        check_label_space(teacher, classes, f"shipped teacher {path}")
        return teacher

    def paths(self, protocol: Protocol, data: str, recipe: TeacherRecipe | None = None) -> tuple[Path, Path]:
        """The cached weights and sidecar of ``recipe`` on data ``data``, trained by today's code."""
        key = sha256_json({"recipe": recipe_hash(protocol, data, recipe), "code": training_code_digest(protocol.task)})
        return self.root / f"{key}.pt", self.root / f"{key}.json"

    def is_cached(self, protocol: Protocol, data: str, recipe: TeacherRecipe | None = None) -> bool:
        weights, meta = self.paths(protocol, data, recipe)
        return weights.is_file() and meta.is_file()

    def get(self, protocol: Protocol, task: Task, splits: dict[str, Split], data: str, progress: bool = False,
            recipe: TeacherRecipe | None = None) -> Teacher:
        """A teacher trained from ``recipe`` (default: the protocol's teacher) on ``splits``, whose
        fingerprint is ``data``: cached, or trained now."""
        recipe = recipe or protocol.teacher
        key = recipe_hash(protocol, data, recipe)
        teacher = self._shipped(task, splits, recipe.model, key, "zoo")
        if teacher is None:
            weights, meta_path = self.paths(protocol, data, recipe)
            teacher = self._load(task, splits, recipe.model, weights, meta_path, "zoo", self.device)
            if teacher is None:
                teacher = self._train(protocol, task, splits, recipe, weights, meta_path, progress)
        teacher.seed, teacher.recipe_key = recipe.seed, key
        return teacher

    def assistant(self, protocol: Protocol, task: Task, splits: dict[str, Split], data: str, model_name: str,
                  taught_by: Teacher, kd_hparams: dict[str, Any], progress: bool = False) -> Teacher:
        """A teacher assistant (Mirzadeh et al. 2020): ``model_name`` trained by plain KD from
        ``taught_by`` on the protocol's student schedule; cached by its recipe like a teacher."""
        from bench.registry import METHODS

        key = assistant_hash(protocol, model_name, taught_by.sha256, kd_hparams, data)
        cached = sha256_json({"recipe": key, "code": training_code_digest(protocol.task, METHODS.get("kd").__module__)})
        weights, meta_path = self.root / "assistants" / f"{cached}.pt", self.root / "assistants" / f"{cached}.json"
        assistant = self._shipped(task, splits, model_name, key, "assistant")
        if assistant is None:
            assistant = self._load(task, splits, model_name, weights, meta_path, "assistant", self.device)
        if assistant is None:
            from bench.distill import TeacherInput
            from bench.teacher_cache import TeacherOutputCache

            outputs = None  # random crops have no finite variant set: the teacher runs live
            if task.num_augment_variants(protocol.augmentation) is not None:
                outputs, _ = TeacherOutputCache.load_or_build(
                    taught_by.model, taught_by.model_name, taught_by.sha256, data, task,
                    splits["train"], protocol.augmentation, ("logits",))
            teaching = TeacherInput(taught_by.model.to(self.device), taught_by.model_name, outputs)
            assistant = self._train(protocol, task, splits, TeacherRecipe(model_name, protocol.schedule,
                                                                          protocol.teacher.seed),
                                    weights, meta_path, progress, METHODS.get("kd")(**kd_hparams), teaching,
                                    source="assistant", extra_meta={"taught_by": taught_by.sha256,
                                                                    "kd": kd_hparams})
        assistant.seed, assistant.recipe_key = protocol.teacher.seed, key
        return assistant

    @staticmethod
    def _load(task: Task, splits: dict[str, Split], model_name: str, weights: Path, meta_path: Path,
              source: str, device: torch.device) -> Teacher | None:
        """The cached teacher, or ``None`` when there is none or when its files fail their checks
        (sidecar unreadable or edited, weights edited, truncated or unreadable): then it is retrained,
        with a :class:`~bench.paths.CacheIntegrityWarning`."""
        if not (weights.is_file() and meta_path.is_file()):
            return None
        classes = tuple(splits["train"].classes)
        model = task.build_model(model_name, len(classes))
        try:
            meta = json.loads(meta_path.read_text())
            if not isinstance(meta, dict) or meta.get("digest") != sha256_json(
                    {k: v for k, v in meta.items() if k != "digest"}):
                raise TeacherMismatchError(f"sidecar {meta_path} does not match its digest (edited or truncated)")
            sha = load_state_dict_checked(model, weights, meta["sha256"])
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TeacherMismatchError) as exc:
            warnings.warn(f"cached {source} {weights} fails its check ({exc}); retraining it",
                          CacheIntegrityWarning, stacklevel=3)
            return None
        recorded = tuple(meta["classes"]) if "classes" in meta else None
        teacher = Teacher(model.to(device), model_name, sha, source, meta["metrics"], meta["train_seconds"],
                          str(weights), recorded)
        check_label_space(teacher, classes, f"cached teacher {weights}")
        return teacher

    def _train(self, protocol: Protocol, task: Task, splits: dict[str, Split], recipe: TeacherRecipe,
               weights: Path, meta_path: Path, progress: bool, method=None, teaching=None,
               source: str = "zoo", extra_meta: dict[str, Any] | None = None) -> Teacher:
        """Train ``recipe.model`` alone (a teacher) or taught by ``teaching`` with ``method`` (an assistant)."""
        from bench.distill import Distiller
        from bench.engine import seed_everything, set_threads, train
        from bench.registry import METHODS

        set_threads(protocol.threads)  # the thread count is part of the recipe: results depend on it
        generator = seed_everything(recipe.seed)
        classes = tuple(splits["train"].classes)
        model = task.build_model(recipe.model, len(classes)).to(self.device)  # built under the recipe's seed
        distiller = Distiller(task, model, recipe.model, method or METHODS.get("baseline")(),
                              [teaching] if teaching else ())
        start = time.perf_counter()
        train(distiller, splits["train"], recipe.schedule, protocol.augmentation, generator,
              progress=progress, desc=f"{source} {recipe.model}", model_name=recipe.model, device=self.device)
        seconds = time.perf_counter() - start
        distiller.close()
        metrics = task.evaluate(model, splits["test"], recipe.schedule.batch_size)
        atomic_save({k: v.cpu() for k, v in model.state_dict().items()}, weights)
        sha = sha256_file(weights)
        meta = {"sha256": sha, "recipe": dataclasses.asdict(recipe), "protocol": protocol.key,
                "metrics": metrics, "train_seconds": seconds, "classes": list(classes), **(extra_meta or {})}
        meta = json_ready(meta)  # a metric that does not apply (NaN) is stored as null
        meta["digest"] = sha256_json(meta)
        atomic_write_text(meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return Teacher(model, recipe.model, sha, source, metrics, seconds, str(weights), classes)

    def from_file(self, protocol: Protocol, task: Task, splits: dict[str, Split], path: str,
                  expected_sha256: str | None = None, model_name: str | None = None) -> Teacher:
        """A user-given teacher: a state dict of ``model_name`` (default: the protocol's teacher model).

        A file whose classifier predicts another number of classes than the dataset has is
        rejected as a label-space mismatch before anything else is checked.
        """
        model_name = model_name or protocol.teacher.model
        classes = tuple(splits["train"].classes)
        _check_file_label_space(task, model_name, classes, Path(path))
        model = task.build_model(model_name, len(classes))
        sha = load_state_dict_checked(model, Path(path), expected_sha256, model_name)
        model = model.to(self.device)
        metrics = task.evaluate(model, splits["test"], protocol.schedule.batch_size)
        return Teacher(model, model_name, sha, "file", metrics, 0.0, str(path), None)


def _check_file_label_space(task: Task, model_name: str, classes: tuple[str, ...], path: Path) -> None:
    if not path.is_file():
        raise TeacherMismatchError(f"teacher file {path} does not exist")
    try:
        state = read_state_dict(path)
    except TeacherMismatchError:  # reported with detail by load_state_dict_checked
        return
    for key, dim in label_space_keys(task, model_name, len(classes)).items():
        value = state.get(key)
        if isinstance(value, torch.Tensor) and value.dim() > dim and value.shape[dim] != len(classes):
            raise TeacherMismatchError(
                f"teacher file {path} has a different label space: its classifier ({key!r}) predicts "
                f"{value.shape[dim]} classes, the protocol's dataset has {len(classes)} "
                f"({_preview(classes)}); all teachers must share the student's label space")
