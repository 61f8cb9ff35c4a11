"""CRD, contrastive representation distillation: Tian, Krishnan, Isola, "Contrastive Representation
Distillation", ICLR 2020.

Both pooled embeddings are projected to d = 128 and L2-normalised (``Embed``: linear + L2 norm):
s = g_s(f_s), t = g_t(f_t). A memory bank keeps one d-vector per training sample and model
(M_s, M_t), initialised uniformly in +-1/sqrt(d/3). For each sample i of a batch, K negatives
j_1..j_K are drawn and, with h(v, m) = exp(v . m / tau) / Z,

    teacher anchor: h(t_i, M_s[i]) (positive), h(t_i, M_s[j_k]) (negatives)
    student anchor: h(s_i, M_t[i]) (positive), h(s_i, M_t[j_k]) (negatives)
    NCE(h) = -[ log(h+ / (h+ + K/N)) + sum_k log((K/N) / (h_k + K/N)) ]       (eq. 18, noise Pn = 1/N)
    L = CE + beta * mean_i [NCE(student anchor) + NCE(teacher anchor)]

Z is fixed on the first batch to mean(exp(v . m / tau)) * N for each anchor side. After the loss
the bank rows of the batch move towards the new embeddings, M[i] <- normalise(m M[i] + (1 - m) v_i),
without gradients. Defaults: beta = 0.8, CE weight 1, no KD term (RepDistiller
``scripts/run_cifar_distill.sh``: ``--distill crd -r 1 -a 0 -b 0.8``); d = 128 (``--feat_dim``),
K = 16384 (``--nce_k``), tau = 0.07 (``--nce_t``), m = 0.5 (``--nce_m``). Feature points: the pooled
embedding of both models (RepDistiller ``feat[-1]``).

Negatives follow RepDistiller's default path (``train_student.py`` builds
``get_cifar100_dataloaders_sample(k=nce_k, mode='exact', is_sample=True)``, ``dataset/cifar100.py``
``CIFAR100InstanceSample``): the positive is the sample's own bank row ('exact' mode) and the K
negatives are drawn uniformly *without replacement from the samples of the other classes*; the
``AliasMethod`` sampler of ``crd/memory.py`` is only used when no indices are given, which that
script never does. Here the draw takes the K smallest of uniform keys over the training split with
the sample's own class masked out, from a generator seeded from the run's random state, on the
bank's device. Scores are computed as ``v @ M.T`` and gathered at the drawn rows (the same numbers as
the reference's ``bmm`` over gathered rows, without materialising B x (K+1) x d).

Deviation, small training splits: the reference draws *with* replacement when K exceeds the
negatives a class has; here K is clamped to the smallest number of other-class samples (e.g. 760 of
the smoke protocols' 800 images in 20 classes), so every negative is distinct, and the NCE's noise
term uses the clamped K. On CIFAR-100 (50000 images, 49500 negatives per class) nothing changes.
The bank's size is the training split's (``Method.bind_data``); the batch's dataset indices come in
``LossInputs.indices``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bench.distributed import all_gather_cat
from bench.errors import ConfigError
from bench.method import LossInputs, Method
from bench.registry import METHODS

#: RepDistiller ``crd/criterion.py``
EPS = 1e-7


class Embed(nn.Module):
    """Linear projection followed by L2 normalisation (RepDistiller ``crd/criterion.py`` ``Embed``)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x.flatten(1))
        return x / x.pow(2).sum(1, keepdim=True).sqrt()


class ContrastMemory(nn.Module):
    """The two banks (student rows, teacher rows) and their normalisation constants; buffers, never
    trained by the optimizer (RepDistiller ``crd/memory.py`` ``ContrastMemory``)."""

    def __init__(self, dim: int, num_samples: int, temperature: float, momentum: float):
        super().__init__()
        self.temperature, self.momentum = temperature, momentum
        stdv = 1.0 / math.sqrt(dim / 3)
        self.register_buffer("memory_s", torch.rand(num_samples, dim).mul_(2 * stdv).add_(-stdv))
        self.register_buffer("memory_t", torch.rand(num_samples, dim).mul_(2 * stdv).add_(-stdv))
        #: Z of the student-anchor and the teacher-anchor side; -1 until the first batch sets them
        self.register_buffer("z", torch.full((2,), -1.0))

    def forward(self, v_s: torch.Tensor, v_t: torch.Tensor, idx: torch.Tensor,
                contrast_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h for (student anchor vs teacher bank, teacher anchor vs student bank), each B x (K+1) with
        the positive in column 0; then the bank update of rows ``idx``."""
        num_samples = self.memory_s.shape[0]
        out_s = torch.exp((v_s @ self.memory_t.t()).gather(1, contrast_idx) / self.temperature)
        out_t = torch.exp((v_t @ self.memory_s.t()).gather(1, contrast_idx) / self.temperature)
        with torch.no_grad():
            if self.z[0] < 0:
                self.z[0] = out_s.mean() * num_samples
            if self.z[1] < 0:
                self.z[1] = out_t.mean() * num_samples
            # under DDP every rank updates the rows of the whole global batch, so the banks stay equal
            idx, v_s, v_t = all_gather_cat(idx), all_gather_cat(v_s.detach()), all_gather_cat(v_t.detach())
            # out of place: the scores above keep the old banks for their backward pass
            for name, v in (("memory_s", v_s), ("memory_t", v_t)):
                memory = getattr(self, name)
                rows = memory.index_select(0, idx).mul_(self.momentum).add_(v.detach() * (1 - self.momentum))
                setattr(self, name, memory.index_copy(0, idx, rows / rows.pow(2).sum(1, keepdim=True).sqrt()))
        return out_s / self.z[0], out_t / self.z[1]


def contrast_loss(x: torch.Tensor, num_samples: int) -> torch.Tensor:
    """The NCE loss of eq. 18 on h (B x (K+1), positive first), averaged over the batch
    (RepDistiller ``crd/criterion.py`` ``ContrastLoss``)."""
    m_pn = (x.shape[1] - 1) / float(num_samples)
    log_d1 = torch.log(x[:, 0] / (x[:, 0] + m_pn + EPS))
    log_d0 = torch.log(m_pn / (x[:, 1:] + m_pn + EPS))
    return -(log_d1.sum() + log_d0.sum()) / x.shape[0]


class CRDModules(nn.Module):
    """CRD's extras: the two embeddings (trained), the memory and the training labels (buffers)."""

    def __init__(self, s_dim: int, t_dim: int, feat_dim: int, num_samples: int, temperature: float,
                 momentum: float, labels: torch.Tensor | None, num_negatives: int, seed: int):
        super().__init__()
        self.embed_s = Embed(s_dim, feat_dim)
        self.embed_t = Embed(t_dim, feat_dim)
        self.memory = ContrastMemory(feat_dim, num_samples, temperature, momentum)
        self.register_buffer("labels", None if labels is None else labels.clone(), persistent=False)
        self.num_samples, self.num_negatives, self.seed = num_samples, num_negatives, seed
        self._generator: torch.Generator | None = None
        self._resumed_state: torch.Tensor | None = None  # a checkpoint's generator state, applied on first use

    def generator(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
            if self._resumed_state is not None:  # a checkpoint's draws continue on the run's device
                self._generator.set_state(self._resumed_state)
                self._resumed_state = None
        return self._generator

    def get_extra_state(self) -> dict:
        """The negatives' generator state, so that a checkpoint (:mod:`bench.checkpoint`) resumes the draws."""
        return {"generator": None if self._generator is None else self._generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        self._generator, self._resumed_state = None, state["generator"]

    def sample_contrast(self, idx: torch.Tensor) -> torch.Tensor:
        """B x (K+1) bank rows: each sample's own index, then K distinct uniform draws among the samples
        of the other classes (among all other samples when the labels are unknown)."""
        keys = torch.rand(len(idx), self.num_samples, generator=self.generator(idx.device), device=idx.device)
        if self.labels is not None:
            excluded = self.labels[idx].unsqueeze(1) == self.labels.unsqueeze(0)
        else:
            excluded = torch.arange(self.num_samples, device=idx.device).unsqueeze(0) == idx.unsqueeze(1)
        negatives = keys.masked_fill(excluded, 2.0).topk(self.num_negatives, dim=1, largest=False).indices
        return torch.cat([idx.unsqueeze(1), negatives], dim=1)

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor, idx: torch.Tensor,
                contrast_idx: torch.Tensor | None = None) -> torch.Tensor:
        """CRD loss (student-anchor + teacher-anchor NCE); the bank rows are drawn unless given."""
        if contrast_idx is None:
            contrast_idx = self.sample_contrast(idx)
        out_s, out_t = self.memory(self.embed_s(f_s), self.embed_t(f_t), idx, contrast_idx)
        return contrast_loss(out_s, self.num_samples) + contrast_loss(out_t, self.num_samples)


@METHODS.register("crd")
class CRD(Method):
    """Contrastive representation distillation on the pooled embeddings; see the module docstring."""

    defaults = {"beta": 0.8, "feat_dim": 128, "nce_k": 16384, "nce_t": 0.07, "nce_m": 0.5}
    ranges = {"beta": "[0, inf)", "feat_dim": "[1, inf)", "nce_k": "[1, inf)", "nce_t": "(0, inf)",
              "nce_m": "[0, 1)"}
    student_features = ("embedding",)
    teacher_features = ("embedding",)
    tasks = ("classification",)
    default_tiers = ("smoke", "full")  # mini only when named, until published on both mini protocols

    def build_extras(self, student_shapes, teacher_shapes) -> nn.Module:
        data = self.data
        if data is None:
            raise ConfigError("method crd: its memory bank needs the training split's size; call bind_data "
                              "before build_extras (bench.runner.bind_training_data does)")
        for key in ("feat_dim", "nce_k"):
            if self.hparams[key] != int(self.hparams[key]):
                raise ConfigError(f"method crd: hyperparameter {key!r} must be a whole number, "
                                  f"got {self.hparams[key]!r}")
        if data.labels is not None:
            available = data.num_samples - int(torch.bincount(data.labels).max())
        else:
            available = data.num_samples - 1
        if available < 1:
            raise ConfigError("method crd: the training split has no sample of another class to contrast with")
        seed = int(torch.empty((), dtype=torch.int64).random_())  # from the run's seeded random state
        return CRDModules(student_shapes["embedding"][1], teacher_shapes["embedding"][1],
                          int(self.hparams["feat_dim"]), data.num_samples, self.hparams["nce_t"],
                          self.hparams["nce_m"], data.labels, min(int(self.hparams["nce_k"]), available), seed)

    def losses(self, inputs: LossInputs, extras: CRDModules) -> dict[str, torch.Tensor]:
        if inputs.indices is None:
            raise ConfigError("method crd: the batch carries no dataset indices (LossInputs.indices)")
        idx = inputs.indices.to(extras.memory.memory_s.device)
        terms = dict(inputs.task_losses)
        terms["crd"] = self.hparams["beta"] * extras(inputs.student["embedding"], inputs.teacher["embedding"], idx)
        return terms
