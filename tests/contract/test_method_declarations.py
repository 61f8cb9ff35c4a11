"""What a method class declares agrees with what its instance at the defaults uses: the command line
checks options (``--teacher`` applies or not) on the class, before any instance exists."""

import pytest

from bench.registry import METHODS


@pytest.mark.parametrize("name", METHODS.names())
def test_class_and_default_instance_agree_on_needing_a_teacher(name):
    cls = METHODS.get(name)
    assert bool(cls.teacher_features) == cls().needs_teacher
