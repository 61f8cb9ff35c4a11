"""CRD against RepDistiller's ``crd/criterion.py`` (``CRDLoss``) and ``crd/memory.py`` (``ContrastMemory``).

The golden numbers were computed by running HobbitLong/RepDistiller at commit
b84f547c5db6a35318d4671d7d5c4de74c822403 (``AliasMethod.cuda`` made a no-op to run on the CPU) on
the tensors of :func:`fixed` below, with feat_dim 4, n_data 12, nce_k 5, nce_t 0.07, nce_m 0.5, the
same embedding weights and initial memory, and the same ``contrast_idx``, for two consecutive calls
(the second sees the updated memory and the Z fixed by the first). The reference keeps tau and Z in
a float32 buffer, hence the tolerance.
"""

import pytest
import torch

from baselines.crd import CRD, CRDModules
from bench.errors import ConfigError
from bench.method import DataInfo, LossInputs

B, S_DIM, T_DIM, FEAT, N, K = 3, 6, 5, 4, 12, 5
LABELS = torch.arange(N) % 3
IDX = torch.tensor([0, 4, 7])
CONTRAST_IDX = torch.tensor([[0, 1, 2, 4, 5, 7], [4, 0, 2, 3, 5, 6], [7, 0, 3, 5, 9, 11]])
GOLDEN_LOSS_1 = 15.645119667053223
GOLDEN_LOSS_2 = 11.981277465820312
GOLDEN_Z = (1361.0093994140625, 10673.66796875)  # Z_v1 (student anchor), Z_v2 (teacher anchor)
# memory rows after the first call, then after the second
GOLDEN_MEMORY_S_4_FIRST = [-0.6206944584846497, 0.2209320217370987, 0.7121595144271851, 0.24239709973335266]
GOLDEN_MEMORY_T_7_FIRST = [-0.4184320867061615, -0.07649575173854828, -0.40808460116386414, -0.8077932596206665]
GOLDEN_MEMORY_S_4 = [-0.5790600776672363, 0.3479916453361511, 0.7364206314086914, -0.03572028502821922]
GOLDEN_MEMORY_T_7 = [-0.5663526058197021, 0.14649546146392822, -0.21338753402233124, -0.7824637293815613]


def fixed(shape, a, b=0.0, scale=1.0):
    n = 1
    for d in shape:
        n *= d
    return (torch.sin(torch.arange(n, dtype=torch.float32) * a + b) * scale).view(*shape)


def reference_setup(labels=LABELS, k=K):
    modules = CRDModules(S_DIM, T_DIM, FEAT, N, 0.07, 0.5, labels, k, seed=0)
    with torch.no_grad():
        modules.embed_s.linear.weight.copy_(fixed((FEAT, S_DIM), 1.3, scale=0.5))
        modules.embed_s.linear.bias.copy_(fixed((FEAT,), 0.9, 1.0, 0.1))
        modules.embed_t.linear.weight.copy_(fixed((FEAT, T_DIM), 0.7, 0.5, 0.5))
        modules.embed_t.linear.bias.copy_(fixed((FEAT,), 1.1, 2.0, 0.1))
        modules.memory.memory_s.copy_(fixed((N, FEAT), 0.37, 0.0, 0.8))
        modules.memory.memory_t.copy_(fixed((N, FEAT), 0.53, 1.0, 0.8))
    return modules


def test_loss_memory_update_and_z_match_repdistiller():
    modules = reference_setup()
    f_s, f_t = fixed((B, S_DIM), 0.7), fixed((B, T_DIM), 0.3, 0.2)
    assert modules(f_s, f_t, IDX, CONTRAST_IDX).item() == pytest.approx(GOLDEN_LOSS_1, rel=1e-5)
    assert modules.memory.z.tolist() == pytest.approx(GOLDEN_Z, rel=1e-5)
    assert modules.memory.memory_s[4].tolist() == pytest.approx(GOLDEN_MEMORY_S_4_FIRST, rel=1e-5)
    assert modules.memory.memory_t[7].tolist() == pytest.approx(GOLDEN_MEMORY_T_7_FIRST, rel=1e-5)
    assert modules(f_s * 0.5 + 0.1, f_t, IDX, CONTRAST_IDX).item() == pytest.approx(GOLDEN_LOSS_2, rel=1e-5)
    assert modules.memory.z.tolist() == pytest.approx(GOLDEN_Z, rel=1e-5)  # Z is set once
    assert modules.memory.memory_s[4].tolist() == pytest.approx(GOLDEN_MEMORY_S_4, rel=1e-5)
    assert modules.memory.memory_t[7].tolist() == pytest.approx(GOLDEN_MEMORY_T_7, rel=1e-5)


def test_negatives_are_distinct_samples_of_other_classes():
    modules = reference_setup(k=8)  # 8 = 12 samples minus the 4 of the anchor's class: all of them
    rows = modules.sample_contrast(IDX)
    assert rows.shape == (3, 9)
    assert torch.equal(rows[:, 0], IDX)
    for anchor, negatives in zip(IDX.tolist(), rows[:, 1:].tolist(), strict=True):
        assert len(set(negatives)) == 8
        assert all(LABELS[j] != LABELS[anchor] for j in negatives)
    without_labels = CRDModules(S_DIM, T_DIM, FEAT, N, 0.07, 0.5, None, 11, seed=0).sample_contrast(IDX)
    for anchor, negatives in zip(IDX.tolist(), without_labels[:, 1:].tolist(), strict=True):
        assert sorted(negatives) == [j for j in range(N) if j != anchor]


def bound_crd(num_samples=N, labels=LABELS, **hparams):
    method = CRD(**hparams)
    method.bind_data(DataInfo(num_samples=num_samples, num_classes=3, steps_per_epoch=4, epochs=2, labels=labels))
    return method


def test_nce_k_is_clamped_to_the_negatives_the_split_has():
    torch.manual_seed(0)
    extras = bound_crd().build_extras({"embedding": torch.Size([2, S_DIM])}, {"embedding": torch.Size([2, T_DIM])})
    assert extras.num_negatives == 8  # not 16384: 12 samples, 4 per class
    assert tuple(extras.memory.memory_s.shape) == (N, 128)
    assert bound_crd(nce_k=3).build_extras({"embedding": (2, S_DIM)}, {"embedding": (2, T_DIM)}).num_negatives == 3
    with pytest.raises(ConfigError, match="bind_data"):
        CRD().build_extras({"embedding": (2, S_DIM)}, {"embedding": (2, T_DIM)})


def test_losses_read_the_batch_indices_and_update_only_their_rows():
    torch.manual_seed(0)
    method = bound_crd()
    extras = method.build_extras({"embedding": (2, S_DIM)}, {"embedding": (2, T_DIM)})
    before = extras.memory.memory_s.clone()
    f_s = fixed((B, S_DIM), 0.7).requires_grad_()
    inputs = LossInputs({"embedding": f_s}, {"embedding": fixed((B, T_DIM), 0.3)}, LABELS[IDX],
                        {"ce": torch.tensor(0.5)}, indices=IDX)
    terms = method.losses(inputs, extras)
    assert set(terms) == {"ce", "crd"} and torch.isfinite(terms["crd"])
    terms["crd"].backward()
    assert f_s.grad is not None and extras.embed_s.linear.weight.grad is not None
    changed = (extras.memory.memory_s != before).any(1).nonzero().flatten().tolist()
    assert changed == IDX.tolist()
    with pytest.raises(ConfigError, match="indices"):
        method.losses(LossInputs(inputs.student, inputs.teacher, inputs.targets, {}), extras)
