"""TAKD: Mirzadeh, Farajtabar, Li, Levine, Matsukawa, Ghasemzadeh, "Improved Knowledge
Distillation via Teacher Assistant", AAAI 2020.

The teacher teaches an assistant of intermediate size, which teaches the student
(longer chains teacher -> A1 -> A2 -> ... -> student work the same way). Every
stage is plain Hinton KD (:mod:`baselines.kd`):

    L_stage = (1 - a) * CE + a * T^2 * KL(p_prev^T || p_this^T)

What is different is the procedure, which the engine runs: each assistant is
trained by KD from the model before it on the protocol's student schedule,
cached by its recipe (``bench.teachers.assistant_hash``) and reused by every
seed; the student then learns from the last assistant. The chain is
``Protocol.assistants`` unless the ``assistants`` hyperparameter names another
(the assistant-size sweep does); each assistant must lie strictly between its
neighbours in parameter count, or the run stops before any training.

Deviations: the paper tuned T and a per stage with NNI (T in {1..20}, a in
[0.05, 1]); every stage here uses KD's frozen T=4, a=0.9, so TAKD and KD differ
only in the chain. The paper's ``nn.KLDivLoss()`` mean over B*C is replaced by
the batch mean of the class sum (see ``reference/methods.md``, section 1 pitfall).
"""

from __future__ import annotations

from baselines.kd import KD
from bench.registry import METHODS


@METHODS.register("takd")
class TAKD(KD):
    """KD from the last model of a teacher-assistant chain; see the module docstring."""

    defaults = {**KD.defaults, "assistants": None}
    assistant_chain = True
