import dataclasses

import pytest

from bench.errors import ConfigError
from bench.protocol import from_dict, get_protocol, protocols_of_tier


def test_hash_is_stable_and_covers_the_spec():
    a, b = get_protocol("classification-mini"), get_protocol("classification-mini")
    assert a.spec_hash == b.spec_hash
    changed = dataclasses.replace(a, schedule=dataclasses.replace(a.schedule, lr=a.schedule.lr * 2))
    assert changed.spec_hash != a.spec_hash
    assert dataclasses.replace(a, version=a.version + 1).spec_hash != a.spec_hash


def test_seeds_do_not_change_the_hash():
    p = get_protocol("classification-mini")
    assert p.with_seeds((7, 8)).spec_hash == p.spec_hash


def test_protocol_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_protocol("classification-mini").version = 99


def test_round_trip_through_plain_data():
    p = get_protocol("classification-mini")
    assert from_dict(p.to_dict()).spec_hash == p.spec_hash


@pytest.mark.parametrize("path", [(), ("schedule",), ("teacher",), ("teacher", "schedule")])
def test_unknown_config_key_is_named(path):
    data = get_protocol("classification-mini").to_dict()
    target = data
    for key in path:
        target = target[key]
    target["learning_rte"] = 0.1
    with pytest.raises(ConfigError, match="learning_rte"):
        from_dict(data)


def test_tiers():
    assert [p.name for p in protocols_of_tier("mini")] == [
        "classification-gap", "classification-mini", "detection-mini", "pose-mini", "segmentation-mini"]
    with pytest.raises(ConfigError, match="valid tiers"):
        protocols_of_tier("huge")
