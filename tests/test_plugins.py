"""Plugins by entry point (bench/registry.py, issue 17 item 1): a method in a package of its own,
installed (here with ``pip install --target``, a path-installed distribution on ``PYTHONPATH``), runs
with ``kdbench run --method`` like a built-in, shows its source in ``kdbench list``; a plugin that fails
to import is named with its error and breaks nothing else; a name colliding with a built-in is refused
with both sources."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

KDBENCH = str(Path(sys.executable).with_name("kdbench"))

PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "kdbench-example-plugin"
version = "0.3.1"

[tool.setuptools]
py-modules = ["example_kd", "example_clash"]

[project.entry-points."kdbench.methods"]
example-kd = "example_kd:ExampleKD"
kd = "example_clash:Clash"

[project.entry-points."kdbench.plugins"]
broken = "example_missing_module"
"""

EXAMPLE_KD = '''
"""An example method from outside the repository: KD with the temperature as its only setting."""
from bench.method import Method
from baselines.kd import soft_kl


class ExampleKD(Method):
    """Example KD: CE/2 + T^2 KL(p_t^T || p_s^T)/2 (a plugin's method)."""

    defaults = {"T": 2.0}
    ranges = {"T": "(0, inf)"}
    teacher_features = ("logits",)
    tasks = ("classification",)

    def losses(self, inputs, extras):
        terms = {name: 0.5 * value for name, value in inputs.task_losses.items()}
        terms["kd"] = 0.5 * soft_kl(inputs.student["logits"], inputs.teacher["logits"], self.hparams["T"])
        return terms
'''

CLASH = '''
from bench.method import Method


class Clash(Method):
    """A method that wants the built-in name kd."""
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The example plugin built and installed into a folder of its own (the test venv is untouched)."""
    root = tmp_path_factory.mktemp("plugin")
    source, site = root / "src", root / "site"
    source.mkdir()
    (source / "pyproject.toml").write_text(PYPROJECT)
    (source / "example_kd.py").write_text(textwrap.dedent(EXAMPLE_KD))
    (source / "example_clash.py").write_text(textwrap.dedent(CLASH))
    built = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                            "--target", str(site), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    return site


def kdbench(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([KDBENCH, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def test_an_installed_plugin_method_runs_and_says_where_it_comes_from(plugin_site, tmp_path):
    listed = kdbench(plugin_site, "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.strip().startswith("example-kd"))
    assert "[plugin kdbench-example-plugin 0.3.1 (example_kd:ExampleKD)]" in line
    kd_line = next(line for line in listed.stdout.splitlines() if line.strip().startswith("kd "))
    assert "plugin" not in kd_line  # the built-in kept its name
    assert "plugins not loaded:" in listed.stdout
    assert "broken = example_missing_module" in listed.stdout and "ModuleNotFoundError" in listed.stdout
    assert "kd = example_clash:Clash" in listed.stdout
    assert "already registered by built-in (baselines/kd.py)" in listed.stdout
    run = kdbench(plugin_site, "run", "--protocol", "classification-smoke", "--method", "example-kd", "--seeds", "0",
                  "--results", str(tmp_path / "r"), "--set", "T=3", "--quiet", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    [path] = (tmp_path / "r").rglob("seed-0.json")
    record = json.loads(path.read_text())
    assert record["method"] == {"name": "example-kd", "hparams": {"T": 3.0}}
    assert "example-kd" in record["final_losses"] or "kd" in record["final_losses"]
    assert "plugin example-kd" not in run.stderr  # a loaded plugin is not reported
    assert "kdbench: plugin broken (example_missing_module" in run.stderr  # the broken one is, on stderr


def test_a_broken_plugin_does_not_break_other_commands(plugin_site, tmp_path):
    shown = kdbench(plugin_site, "profile", "--model", "tinyresnet_8", "--input-size", "3", "16", "16", "--json",
                    cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "ModuleNotFoundError" in shown.stderr
