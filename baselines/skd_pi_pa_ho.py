"""Structured KD with all three parts: pixel-wise, pair-wise and holistic (Liu et al., CVPR 2019).

The holistic part is a conditional-free WGAN-GP game on the stride-8 score maps:
a discriminator D scores score maps, the student is the generator.

    D step (its own optimizer, after each student step):
        L_D = lambda_d * (E[D(Q_s)] - E[D(Q_t)] + 10 * GP),   GP on x = eps Q_t + (1 - eps) Q_s
    student term:
        l_ho = -lambda_d * E[D(Q_s)],   lambda_d = 0.1
    L = CE + 80 * l_pi + lambda_pa * l_pa + l_ho   (80: :mod:`baselines.skd_pi`)

D follows the authors' SAGAN-style design in miniature: BatchNorm on the score
map, spectrally normalised 4x4 stride-2 convs with LeakyReLU 0.1, a final conv
without padding over the remaining map to one score per sample (the reference's
4x4 map and 4x4 last conv; a patch map of several scores would make the mean in
the losses and the gradient penalty's critic differ). Not reproduced (stated):
the self-attention blocks (the maps here are 8x8), and D's optimizer is Adam
(lr 4e-4, betas 0.9/0.99), our choice, where the reference (``kd_model.py``)
uses SGD with lr_D = 4e-4, the student's momentum and weight decay. D is updated only in
:meth:`after_step`, from detached score maps, so its step never touches the
student; its parameters are counted as extra parameters.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import spectral_norm

from baselines.skd_pi_pa import SKDPixelPair
from bench.method import LossInputs
from bench.registry import METHODS
from tasks.segmentation.losses import gradient_penalty


def _halved(size: int) -> int:
    """Output size of a 4x4, stride-2, padding-1 convolution."""
    return (size + 2 - 4) // 2 + 1


def score_map_discriminator(num_classes: int, map_hw: tuple[int, int], width: int = 32) -> nn.Module:
    """BN, spectrally normalised 4x4 stride-2 convs (LeakyReLU 0.1), then one conv without padding
    spanning what is left of the map: one score per sample, as the reference D's last 4x4 conv
    leaves (1x1) on its 4x4 map, so E[D] and the gradient penalty see the same critic."""
    height, width_left = (_halved(_halved(int(n))) for n in map_hw)
    if height < 1 or width_left < 1:
        raise ValueError(f"score maps of {map_hw[0]}x{map_hw[1]} are too small for the discriminator (at least 4x4)")
    return nn.Sequential(
        nn.BatchNorm2d(num_classes),
        spectral_norm(nn.Conv2d(num_classes, width, 4, 2, 1)), nn.LeakyReLU(0.1),
        spectral_norm(nn.Conv2d(width, 2 * width, 4, 2, 1)), nn.LeakyReLU(0.1),
        spectral_norm(nn.Conv2d(2 * width, 1, (height, width_left))),
    )


@METHODS.register("skd-pi-pa-ho")
class SKDHolistic(SKDPixelPair):
    """SKD pixel-wise, pair-wise and holistic (adversarial) distillation; see the module docstring."""

    defaults = {**SKDPixelPair.defaults, "lambda_d": 0.1, "gp_weight": 10.0, "lr_d": 4e-4}

    def __init__(self, **hparams):
        super().__init__(**hparams)
        self.discriminator: nn.Module | None = None
        self.d_optimizer: torch.optim.Optimizer | None = None
        self._last_maps: tuple[torch.Tensor, torch.Tensor] | None = None

    def build_extras(self, student_shapes, teacher_shapes):
        shape = student_shapes["logits.low"]
        self.discriminator = score_map_discriminator(shape[1], tuple(shape[-2:]))
        self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=self.hparams["lr_d"],
                                            betas=(0.9, 0.99))
        return None

    def auxiliary_parameters(self) -> list[nn.Parameter]:
        return [] if self.discriminator is None else list(self.discriminator.parameters())

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        terms = super().losses(inputs, extras)
        student_map, teacher_map = inputs.student["logits.low"], inputs.teacher["logits.low"]
        self.discriminator.to(student_map.device).train()
        terms["holistic"] = -self.hparams["lambda_d"] * self.discriminator(student_map).mean()
        self._last_maps = (student_map.detach(), teacher_map.detach())
        return terms

    def state_dict(self) -> dict:
        """The discriminator and its optimiser (a checkpoint resumes the adversary too)."""
        if self.discriminator is None:
            return {}
        return {"discriminator": self.discriminator.state_dict(), "d_optimizer": self.d_optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.discriminator.load_state_dict(state["discriminator"])
            self.d_optimizer.load_state_dict(state["d_optimizer"])

    def after_step(self, step: int) -> None:
        """One discriminator update on the last batch's (detached) student and teacher score maps."""
        if self._last_maps is None:
            return
        fake, real = self._last_maps
        d, h = self.discriminator, self.hparams
        loss = h["lambda_d"] * (d(fake).mean() - d(real).mean() + h["gp_weight"] * gradient_penalty(d, real, fake))
        self.d_optimizer.zero_grad(set_to_none=True)  # drops what the student's step left on D
        loss.backward()
        self.d_optimizer.step()
        self._last_maps = None
