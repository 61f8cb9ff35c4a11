"""The suite's job queue: a failing run surfaces as the error it raised, in the pool or not."""

import pytest

from bench.errors import ConfigError
from bench.protocol import get_protocol
from bench.runner import RunOptions
from bench.suite import JobQueue


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failing_job_raises_its_error(jobs, tmp_path):
    protocol = get_protocol("pose-smoke")  # takd does not apply to pose: the run raises before training
    with pytest.raises(ConfigError, match="does not apply to task 'pose'"):
        with JobQueue(jobs, 1, progress=False) as queue:
            queue.submit([(protocol, "takd", 0, str(tmp_path), RunOptions())])
    assert not list(tmp_path.rglob("*.json"))
