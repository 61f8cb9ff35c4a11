"""``kdbench suite --teacher-dir DIR``: each protocol's teacher file, looked up by model name.

Looked for, in order (the first that exists is used):

* a protocol that pins its teacher file (``Protocol.teacher_file``, e.g. torchvision's
  ``resnet34-b627a593.pth``): that name in ``DIR``;
* else ``DIR/<model>.pth``;
* else the reference's layout: ``DIR/cifar_teachers/<model>_vanilla/ckpt_epoch_240.pth`` (mdistiller's
  ``cifar_teachers.tar`` unpacked in ``DIR``) or ``DIR/<model>_vanilla/ckpt_epoch_240.pth`` (RepDistiller's
  ``save/models`` from ``scripts/fetch_pretrained_teachers.sh``). Their folder names are the model
  names of ``model_dict`` (``resnet32x4``, ``wrn_40_2``, ``vgg13``, ``ResNet50``, ...), which are ours
  for every teacher of the CIFAR-100 tables (our names differ only for students: MobileNetV2 is their
  ``mobile_half``, ShuffleNetV1/V2 their ``ShuffleV1``/``ShuffleV2``).

A protocol whose teacher is not found trains it (CIFAR-100 recipes), unless the protocol pins a file,
which the suite then skips, saying which file it looked for.
"""

from __future__ import annotations

from pathlib import Path

from bench.protocol import Protocol

#: the reference's checkpoint of a teacher trained by train_teacher.py (the last of its 240 epochs)
REFERENCE_CHECKPOINT = "{model}_vanilla/ckpt_epoch_240.pth"


def pinned_prefix(file_name: str) -> str:
    """The sha256 prefix a pinned file name holds, torchvision's ``<arch>-<hex>.pth`` (``b627a593`` of
    ``resnet34-b627a593.pth``); a run's teacher file must have a sha256 that starts with it, whatever
    the user named the file (:func:`bench.runner.teacher_identities`)."""
    return Path(file_name).name.split(".")[0].rsplit("-", 1)[-1].lower()


def teacher_candidates(teacher_dir: str | Path, protocol: Protocol) -> list[Path]:
    """Where the teacher file of ``protocol`` is looked for in ``teacher_dir``, in order."""
    folder = Path(teacher_dir).expanduser()
    if protocol.teacher_file:
        return [folder / protocol.teacher_file]
    model = protocol.teacher.model
    reference = REFERENCE_CHECKPOINT.format(model=model)
    return [folder / f"{model}.pth", folder / "cifar_teachers" / reference, folder / reference]


def find_teacher_file(teacher_dir: str | Path, protocol: Protocol) -> Path | None:
    """The first of :func:`teacher_candidates` that is a file, else ``None``."""
    return next((path for path in teacher_candidates(teacher_dir, protocol) if path.is_file()), None)
