"""Throughput of one CIFAR-100 KD training step (resnet32x4 -> resnet8x4, batch 64) through the engine.

Each step is what ``kdbench run --protocol cifar100-resnet32x4-resnet8x4 --method kd`` does per batch:
random crop 32 with 4-pixel padding and flip (per sample, in the main process, as the in-memory CIFAR
split is read), the CIFAR-100 normalisation, the teacher's forward pass live (random crops have no
teacher-output cache), the student's forward and backward pass, KD at T=4 with CE 0.1 + KD 0.9, and
SGD with the step schedule: :func:`bench.engine.train` itself, on random CIFAR-shaped images (the
pixel values do not change the cost). The weights are random: speed, not accuracy, is measured.

Prints images/s and the projected time of the protocol's training run: 240 epochs of 50000 images
(782 steps of 64 per epoch with the protocol's ``drop_last = false``), teacher training and evaluation
excluded.

Run: ``python tests/benchmarks/cifar_kd_step.py [--device cuda] [--precision bf16] [--steps 30] [--threads N]``.
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from bench.distill import Distiller, TeacherInput
from bench.engine import seed_everything, set_threads, train
from bench.protocol import Protocol, Schedule, TeacherRecipe, get_protocol
from bench.registry import PROTOCOLS
from bench.runner import build_method
from bench.task import Split, make_task

PROTOCOL = "cifar100-resnet32x4-resnet8x4"
TRAIN_IMAGES = 50000


def recipe() -> Protocol:
    """The registered full protocol; when it is not registered, its recipe written out (issue 13 item 2)."""
    if PROTOCOL in PROTOCOLS:
        return get_protocol(PROTOCOL)
    schedule = Schedule(epochs=240, batch_size=64, lr=0.05, nesterov=False, lr_schedule="step",
                        milestones=(150, 180, 210))
    return Protocol(name=PROTOCOL, task="classification", tier="full", version=1,
                    dataset={"name": "cifar100", "val_fraction": 0.0}, student="resnet8x4",
                    teacher=TeacherRecipe("resnet32x4", schedule), schedule=schedule,
                    augmentation="crop32pad4-hflip", metrics=("top1", "top5"), primary_metric="top1", seeds=(0,),
                    normalization=((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
                    method_overrides={"kd": {"T": 4.0, "alpha": 0.9}})


def timed_steps(protocol: Protocol, device: torch.device, steps: int, warmup: int,
                precision: str = "fp32") -> tuple[float, float]:
    """Seconds per step and the teacher's share of them, over ``steps`` steps after ``warmup`` steps."""
    task = make_task(protocol)
    batch = protocol.schedule.batch_size
    generator = seed_everything(0)
    images = torch.randint(0, 256, ((steps + warmup) * batch, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 100, (len(images),), generator=generator)
    classes = tuple(f"class{i}" for i in range(100))
    teacher = task.build_model(protocol.teacher.model, 100).to(device)
    student = task.build_model(protocol.student, 100).to(device)
    method = build_method(protocol, "kd")
    distiller = Distiller(task, student, protocol.student, method, [TeacherInput(teacher, protocol.teacher.model)])
    schedule = dataclasses.replace(protocol.schedule, epochs=1, milestones=(), lr_schedule="cosine")
    seconds = {}
    for name, part in (("warmup", slice(0, warmup * batch)), ("timed", slice(warmup * batch, None))):
        split = Split(images[part], labels[part], classes)
        before = distiller.teacher_forward_seconds
        stats = train(distiller, split, schedule, protocol.augmentation, generator, device=device,
                      model_name=protocol.student, precision=precision)
        seconds[name] = (stats.wall_seconds / stats.steps, (distiller.teacher_forward_seconds - before) / stats.steps)
    distiller.close()
    return seconds["timed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--steps", type=int, default=30, help="timed steps (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: the protocol's)")
    parser.add_argument("--precision", default="fp32", help="fp32, bf16 or fp16 (bench/precision.py)")
    args = parser.parse_args()
    protocol = recipe()
    threads = args.threads or protocol.threads
    set_threads(threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step, teacher = timed_steps(protocol, device, args.steps, args.warmup, args.precision)
    batch = protocol.schedule.batch_size
    steps_per_epoch = TRAIN_IMAGES // batch if protocol.schedule.drop_last else -(-TRAIN_IMAGES // batch)
    total_steps = steps_per_epoch * protocol.schedule.epochs
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {threads} thread(s)"
    print(f"{protocol.key}: kd step, {protocol.teacher.model} -> {protocol.student}, batch {batch}, "
          f"{protocol.augmentation}, teacher live, {args.precision}; {name}, torch {torch.__version__}")
    print(f"step: {step * 1000:.1f} ms ({teacher * 1000:.1f} ms of it the teacher's forward pass), "
          f"{batch / step:.1f} images/s over {args.steps} steps after {args.warmup} warm-up steps")
    print(f"projected training of the student: {protocol.schedule.epochs} epochs x {steps_per_epoch} steps = "
          f"{total_steps} steps = {total_steps * step / 3600:.1f} h")
    if device.type == "cuda":
        print(f"GPU memory: {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB at most allocated")


if __name__ == "__main__":
    main()
