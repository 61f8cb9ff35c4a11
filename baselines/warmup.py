"""The loss warm-up of DKD and ReviewKD: the distillation term is scaled by ``min(epoch / W, 1)``.

mdistiller (``distillers/DKD.py``, ``distillers/ReviewKD.py``) multiplies the term by
``min(epoch / warmup, 1.0)`` with ``epoch`` counted from 1 (``engine/trainer.py``), ``warmup = 20``
epochs of its 240-epoch CIFAR-100 schedule (``CFG.DKD.WARMUP``, ``CFG.REVIEWKD.WARMUP_EPOCHS``; 1 of
100 on ImageNet). A protocol of another length gets the same share of its run: ``W = 20/240`` of its
epochs unless the ``warmup_epochs`` hyperparameter gives W in epochs (exactly 20 at 240 epochs). The
factor is constant within an epoch, as the reference's. The engine's ``after_step(step)`` counts the
steps; the runner's ``bind_data`` gives the steps per epoch and the epochs.
"""

from __future__ import annotations

from bench.errors import ConfigError
from bench.method import DataInfo, Method

#: the reference's warm-up share: 20 of 240 epochs (mdistiller CIFAR-100)
REFERENCE_WARMUP, REFERENCE_EPOCHS = 20, 240


class EpochWarmup(Method):
    """A method whose distillation term warms up linearly per epoch; defaults need ``warmup_epochs``
    (``None``: 20/240 of the protocol's epochs; ``0``: no warm-up)."""

    _steps_done = 0
    warmup_epochs: float | None = None

    def bind_data(self, data: DataInfo) -> None:
        super().bind_data(data)
        given = self.hparams["warmup_epochs"]
        self.warmup_epochs = data.epochs * REFERENCE_WARMUP / REFERENCE_EPOCHS if given is None else float(given)
        self._steps_done = 0

    def after_step(self, step: int) -> None:
        self._steps_done = step

    def state_dict(self) -> dict[str, int]:
        return {"steps_done": self._steps_done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._steps_done = state["steps_done"]

    def warmup_factor(self) -> float:
        """``min(epoch / W, 1)`` for the epoch of the coming step (1 when W is 0)."""
        if self.data is None or self.warmup_epochs is None:
            raise ConfigError(f"method {self.registered_name()}: its warm-up needs the schedule; call "
                              "bind_data before training (bench.runner.bind_training_data does)")
        if self.warmup_epochs <= 0:
            return 1.0
        return min(self.data.epoch_of(self._steps_done) / self.warmup_epochs, 1.0)
