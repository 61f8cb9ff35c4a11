"""OpenMMLab models registered in KDBench's ``MODELS``: built from an mmdet or mmseg config.

A config is a file in OpenMMLab's own format (what a user of mmdet or mmsegmentation already has:
``model = dict(type="FasterRCNN", ...)``), or the name of one shipped under ``configs/``. It is read
with mmengine, which the default environment has, so its feature points are known without OpenMMLab;
building the model needs the OpenMMLab environment (:func:`tasks.openmmlab.require`).

Two things differ from building the config with mmdet or mmseg directly:

* ``num_classes`` comes from the dataset: every head's ``num_classes`` is set to it (but the RPN's,
  which scores objectness);
* checkpoints are read from local files only, and weights only. Every ``init_cfg`` of type
  ``Pretrained`` (and a top-level ``load_from``) must name an existing file: a URL or an
  ``open-mmlab://`` / ``torchvision://`` name is refused before anything is built, naming the key,
  since nothing may be downloaded and mmengine's loaders would fetch it. The file is loaded with
  ``torch.load(weights_only=True)`` into the module that carried the ``init_cfg`` (its ``prefix``,
  if any, selects that part of a whole model's checkpoint), after mmengine's own initialisation.

Register a user's config with :func:`register_config` (from a plugin module, issue 17), e.g.
``register_config("my_faster_rcnn_r50", "mmdet", "/path/to/faster-rcnn_r50_fpn.py")``.
"""

from __future__ import annotations

import copy
import functools
import importlib
import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.errors import ConfigError
from bench.registry import MODELS
from tasks.openmmlab import require

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
BACKENDS = ("mmdet", "mmseg")
#: config keys whose dict holds a head that classifies into the dataset's classes
CLASS_HEADS = ("bbox_head", "decode_head", "auxiliary_head", "mask_head")
#: the folder where bare checkpoint names of configs are looked up
CHECKPOINT_DIR_VARIABLE = "KDBENCH_CHECKPOINTS"
REMOTE = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def shipped_configs() -> list[str]:
    """Names of the configs shipped with KDBench (``configs/<name>.py``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.py"))


def config_path(config: str | Path) -> Path:
    """A shipped config's file, or the given path; a ConfigError listing the shipped ones when neither exists."""
    shipped = CONFIG_DIR / f"{config}.py"
    if shipped.is_file():
        return shipped
    path = Path(config).expanduser()
    if path.is_file():
        return path
    raise ConfigError(f"OpenMMLab config {str(config)!r}: no such file, and no shipped config of that name; "
                      f"shipped: {', '.join(shipped_configs())}")


def read_config(config: str | Path, overrides: dict[str, Any] | None = None):
    """The mmengine ``Config`` of ``config`` with ``overrides`` (dotted keys, as mmengine's ``merge_from_dict``)."""
    from mmengine.config import Config

    path = config_path(config)
    try:
        cfg = Config.fromfile(str(path))
    except Exception as exc:  # a syntax or _base_ error in a user's file: name the file
        raise ConfigError(f"OpenMMLab config {path}: cannot be read: {exc}") from None
    if "model" not in cfg:
        raise ConfigError(f"OpenMMLab config {path}: missing key 'model'")
    if overrides:
        try:
            cfg.merge_from_dict(dict(overrides))
        except (TypeError, KeyError) as exc:
            raise ConfigError(f"OpenMMLab config {path}: the overrides {sorted(overrides)} do not apply: "
                              f"{exc}") from None
    return cfg


def plain(value: Any) -> Any:
    """A config value (mmengine ``ConfigDict`` and lists of them) as plain, deep-copied dicts and lists."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    return copy.deepcopy(value)


def set_num_classes(model_cfg: dict, num_classes: int) -> None:
    """Set ``num_classes`` of every classifying head (:data:`CLASS_HEADS`, nested ones too) to ``num_classes``."""
    for key, value in model_cfg.items():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, dict):
                continue
            if key in CLASS_HEADS and "num_classes" in item:
                item["num_classes"] = num_classes
            set_num_classes(item, num_classes)


@dataclass(frozen=True)
class Checkpoint:
    """A local checkpoint named by a config: the key that named it, the module path it loads into, the file."""

    key: str
    module: str
    path: Path
    prefix: str = ""


def take_checkpoints(model_cfg: dict, where: str = "model", module: str = "") -> list[Checkpoint]:
    """Remove every ``init_cfg`` of type ``Pretrained`` from ``model_cfg`` (in place) and return them as
    :class:`Checkpoint` s, each checked to be an existing local file (a ConfigError naming the key otherwise)."""
    found = []
    init = model_cfg.get("init_cfg")
    inits = init if isinstance(init, list) else [init]
    kept = []
    for i, item in enumerate(inits):
        if isinstance(item, dict) and item.get("type") == "Pretrained":
            key = f"{where}.init_cfg" + (f"[{i}]" if isinstance(init, list) else "") + ".checkpoint"
            found.append(Checkpoint(key, module, local_file(item.get("checkpoint"), key), item.get("prefix", "")))
        elif item is not None:
            kept.append(item)
    if init is not None:
        model_cfg["init_cfg"] = kept if isinstance(init, list) else (kept[0] if kept else None)
    if isinstance(model_cfg.get("pretrained"), str):  # the older spelling: pretrained="file"
        key = f"{where}.pretrained"
        found.append(Checkpoint(key, module, local_file(model_cfg["pretrained"], key)))
        model_cfg["pretrained"] = None
    for key, value in model_cfg.items():
        if isinstance(value, dict) and key != "init_cfg":
            found += take_checkpoints(value, f"{where}.{key}", f"{module}.{key}".lstrip("."))
    return found


def local_file(checkpoint: Any, key: str) -> Path:
    """The local file a config's checkpoint names: a path as given, or a bare file name looked up in the folder
    ``$KDBENCH_CHECKPOINTS`` (where the full-tier configs expect their ImageNet backbones). A URL or an
    ``open-mmlab://`` name is refused, naming the key: nothing is ever downloaded."""
    if not isinstance(checkpoint, str) or not checkpoint:
        raise ConfigError(f"{key}: a Pretrained init_cfg needs a checkpoint file, got {checkpoint!r}")
    if REMOTE.match(checkpoint):
        raise ConfigError(f"{key} = {checkpoint!r} is not a local file: KDBench never downloads weights; fetch the "
                          f"file elsewhere and set {key} to its path (or remove the init_cfg to start from scratch)")
    path = Path(checkpoint).expanduser()
    folder = os.environ.get(CHECKPOINT_DIR_VARIABLE)
    if not path.is_file() and folder and path.name == checkpoint:
        path = Path(folder).expanduser() / checkpoint
    if not path.is_file():
        where = (f" (nor in ${CHECKPOINT_DIR_VARIABLE} = {folder})" if folder else
                 f"; a bare file name is looked up in the folder ${CHECKPOINT_DIR_VARIABLE}, which is not set")
        raise ConfigError(f"{key}: checkpoint file {checkpoint} not found{where}")
    return path


def load_checkpoint(model: nn.Module, checkpoint: Checkpoint) -> None:
    """Load ``checkpoint`` (weights only) into ``model.get_submodule(checkpoint.module)``; a ConfigError naming the
    key and the file when none of its tensors fits the module."""
    state = torch.load(checkpoint.path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError(f"{checkpoint.key}: {checkpoint.path} holds no state dict")
    if checkpoint.prefix:
        prefix = checkpoint.prefix if checkpoint.prefix.endswith(".") else checkpoint.prefix + "."
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    target = model.get_submodule(checkpoint.module) if checkpoint.module else model
    own = target.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fitting:
        raise ConfigError(f"{checkpoint.key}: no tensor of {checkpoint.path} fits the module "
                          f"{checkpoint.module or '(the whole model)'} (first keys: {', '.join(list(state)[:3])})")
    target.load_state_dict(fitting, strict=False)


@dataclass
class OpenMMLabModel:
    """What ``MODELS`` holds for an OpenMMLab model: called with ``num_classes`` it builds the KDBench wrapper
    (:class:`~tasks.openmmlab.detector.MMDetDetector` or :class:`~tasks.openmmlab.segmentor.MMSegSegmentor`)."""

    backend: str
    config: str
    overrides: dict[str, Any] = field(default_factory=dict)
    doc: str = ""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"OpenMMLab backend {self.backend!r}; valid: {', '.join(BACKENDS)}")
        self.__doc__ = self.doc or f"{self.backend} model from the config {self.config}"

    @functools.cached_property
    def read(self):
        """The config with its overrides, read once (every build, feature-point and geometry look-up uses it)."""
        return read_config(self.config, self.overrides)

    def model_config(self, num_classes: int | None = None) -> dict:
        """The config's ``model`` dict (a plain copy), its heads set to ``num_classes`` when given."""
        model_cfg = plain(self.read.model)
        if num_classes is not None:
            set_num_classes(model_cfg, num_classes)
        return model_cfg

    def settings(self) -> dict[str, Any]:
        """The config's top-level ``kdbench_*`` keys (``kdbench_frame``, ``kdbench_normalization``) as a dict
        without the prefix, and its ``data_preprocessor`` (for defaults)."""
        cfg = self.read
        found = {key[len("kdbench_"):]: plain(cfg[key]) for key in cfg.keys() if key.startswith("kdbench_")}
        found["data_preprocessor"] = plain(cfg.model.get("data_preprocessor") or {})
        return found

    def unavailable(self) -> str | None:
        """Why this model cannot be built here (its OpenMMLab package is not installed), or None."""
        from tasks.openmmlab import INSTALL_HINT, PACKAGES, available

        return None if available(self.backend) else f"{PACKAGES[self.backend]} is not installed; {INSTALL_HINT}"

    @property
    def feature_points(self) -> dict[str, str]:
        if self.backend == "mmseg":
            from tasks.openmmlab.segmentor import feature_points

            return feature_points(self.model_config())
        from tasks.openmmlab.detector import feature_points

        return feature_points(self.model_config())

    def geometry(self):
        """The detector's frame and anchors (:class:`tasks.openmmlab.detector.MMDetGeometry`); detection only."""
        from tasks.openmmlab.detector import MMDetGeometry

        return MMDetGeometry(self.model_config(), self.settings())

    def __call__(self, num_classes: int) -> nn.Module:
        from mmengine.config import ConfigDict

        model_cfg = self.model_config(num_classes)
        checkpoints = take_checkpoints(model_cfg)
        require(self.backend)
        from mmengine.registry import DefaultScope

        registry = importlib.import_module(f"{self.backend}.registry").MODELS
        with DefaultScope.overwrite_default_scope(self.backend), warnings.catch_warnings():
            # mmseg warns on every build about its own loss builder's future and CE's ignore-label default;
            # neither applies (KDBench computes the task's losses itself)
            warnings.filterwarnings("ignore", message=".*(build_loss|avg_non_ignore).*", category=UserWarning)
            core = registry.build(ConfigDict(model_cfg))
        quietly(core.init_weights)  # mmengine logs every parameter's initialisation at INFO
        if self.backend == "mmseg":
            from tasks.openmmlab.segmentor import MMSegSegmentor

            wrapper = MMSegSegmentor(core, self.settings())
        else:
            from tasks.openmmlab.detector import MMDetDetector

            wrapper = MMDetDetector(core, self.geometry())
        for checkpoint in checkpoints:
            load_checkpoint(wrapper.core, checkpoint)
        return wrapper


def quietly(call):
    """``call()`` with mmengine's current logger at WARNING (its INFO lines are one per parameter)."""
    from mmengine.logging import MMLogger

    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        return call()
    finally:
        logger.setLevel(level)


def register_config(name: str, backend: str, config: str | Path, overrides: dict[str, Any] | None = None,
                    doc: str = "") -> OpenMMLabModel:
    """Register an OpenMMLab config as the KDBench model ``name`` (the config is checked to exist now)."""
    config_path(config)
    model = OpenMMLabModel(backend, str(config), dict(overrides or {}), doc)
    MODELS.register(name)(model)
    return model


def width_overrides(backend: str, width: int) -> dict[str, Any]:
    """The dotted-key overrides that give a shipped tiny config a ResNet-18 of base width ``width`` (stages of
    w, 2w, 4w, 8w channels) and the neck or decode head that reads it."""
    if backend == "mmdet":  # the FPN reads stages 1-3 (strides 4, 8, 16)
        return {"model.backbone.base_channels": width, "model.neck.in_channels": [width, 2 * width, 4 * width]}
    return {"model.backbone.base_channels": width, "model.backbone.stem_channels": width,
            "model.decode_head.in_channels": 8 * width, "model.decode_head.channels": 4 * width}


#: the shipped models: (name prefix, backend, config, what); ResNet-18 of base width 8 or 16 at the generated
#: scenes' 64 pixels, from scratch (width 16 teaches width 8)
SHIPPED = (
    ("mmdet_retinanet_r18w", "mmdet", "retinanet_r18_fpn_tiny", "RetinaNet"),
    ("mmdet_faster_rcnn_r18w", "mmdet", "faster_rcnn_r18_fpn_tiny", "Faster R-CNN"),
    ("mmseg_pspnet_r18w", "mmseg", "pspnet_r18_d8_tiny", "PSPNet"),
    ("mmseg_deeplabv3_r18w", "mmseg", "deeplabv3_r18_d8_tiny", "DeepLabV3"),
)
WIDTHS = (8, 16)

for _prefix, _backend, _config, _what in SHIPPED:
    for _width in WIDTHS:
        register_config(f"{_prefix}{_width}", _backend, _config, width_overrides(_backend, _width),
                        f"{_backend} {_what}, ResNet-18 of base width {_width} (configs/{_config}.py)")


def accept_openmmlab_keys(module: nn.Module, state_dict: dict, prefix: str, *_args) -> None:
    """A ``load_state_dict`` pre-hook of the wrappers: a checkpoint saved by mmdet or mmseg names its tensors
    ``backbone.…`` where the wrapper holds them as ``core.backbone.…``; such keys (those under none of the
    wrapper's own children) are renamed in place, so a model-zoo file (``{"meta", "state_dict"}``, read
    weights-only by :func:`bench.teachers.read_state_dict`) loads as a teacher as KDBench's own files do."""
    own = tuple(f"{prefix}{name}." for name, _ in module.named_children())
    for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(own)]:
        state_dict[prefix + "core." + key[len(prefix):]] = state_dict.pop(key)


#: the full tier's models: the papers' and model zoos' configs, named by their config
for _config, _backend, _what in (
    ("faster_rcnn_r50_fpn_coco", "mmdet", "Faster R-CNN ResNet-50 FPN for COCO (mmdet's 1x config)"),
    ("faster_rcnn_r101_fpn_coco", "mmdet", "Faster R-CNN ResNet-101 FPN for COCO (mmdet's 1x config)"),
    ("pspnet_r18_d8_cityscapes", "mmseg", "PSPNet ResNet-18-D8 for Cityscapes (mmsegmentation's config)"),
    ("pspnet_r101_d8_cityscapes", "mmseg", "PSPNet ResNet-101-D8 for Cityscapes (mmsegmentation's config)"),
):
    register_config(f"{_backend}_{_config}", _backend, _config, doc=f"{_what}, configs/{_config}.py")
