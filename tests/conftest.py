"""Shared fixtures: an isolated cache per test session, one torch thread, the smoke protocol."""

from __future__ import annotations

import dataclasses

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Generated data, teachers and teacher outputs go to a fresh folder, never the user's cache; the
    repository's shipped teachers are not used (an empty folder stands for them), so every test trains
    its teachers from their recipes whatever the repository ships."""
    path = tmp_path_factory.mktemp("kdbench-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("KDBENCH_CACHE", str(path))
    mp.setenv("KDBENCH_SHIPPED_TEACHERS", str(tmp_path_factory.mktemp("no-shipped-teachers")))
    torch.set_num_threads(1)
    yield path
    mp.undo()


@pytest.fixture
def smoke_protocol():
    from bench.protocol import get_protocol

    return get_protocol("classification-smoke")


def tiny_protocol_of(smoke_protocol):
    """The smoke protocol cut to one epoch and one seed, for tests that train many times."""
    schedule = dataclasses.replace(smoke_protocol.schedule, epochs=1)
    return dataclasses.replace(smoke_protocol, name="classification-tiny", schedule=schedule, seeds=(0,))


@pytest.fixture
def tiny_protocol(smoke_protocol):
    """:func:`tiny_protocol_of` the smoke protocol."""
    return tiny_protocol_of(smoke_protocol)


@pytest.fixture
def no_latency_measurement(monkeypatch):
    """Runs whose test checks no efficiency figure skip the latency measurement (seconds per model on a busy
    machine); the record keeps the input size and batch the models would have been profiled at."""
    def profile(factory, name, input_size, batch_size, device="cpu", threads=1):
        return {"model": name, "input_size": list(input_size), "batch_size": batch_size, "params": 0}

    monkeypatch.setattr("bench.runner.cached_profile", profile)
