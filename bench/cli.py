"""The ``kdbench`` command: list, run, suite, sweep, leaderboard, profile, regress, verify-record.

User errors (:class:`~bench.errors.KDBenchError`) print one line and exit with
their code (2 for unknown names and bad configs); Ctrl-C exits 130 and leaves no
partial record.
"""

from __future__ import annotations

import argparse
import ast
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.errors import ConfigError, KDBenchError
# the real-format datasets (REAL_DATASETS) and the protocols derived for them live next to get_protocol,
# so that every command (run, suite and its workers, verify-record, the gate) resolves ``<protocol>+<dataset>``
from bench.protocol import DATASETS_READING_A_ROOT, REAL_DATASETS, protocol_for_data  # noqa: F401

LEADERBOARD_DIR = Path(__file__).resolve().parent.parent / "leaderboard"
PUBLISHED_RECORDS = LEADERBOARD_DIR / "records"
PUBLISHED_TABLES = LEADERBOARD_DIR / "tables"
PUBLISHED_SWEEPS = LEADERBOARD_DIR / "sweeps"
REGRESSION_REFERENCE = LEADERBOARD_DIR / "regression"
DEFAULT_RESULTS = os.environ.get("KDBENCH_RESULTS", "results")


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    """``["T=2", "alpha=0.5"]`` -> ``{"T": 2, "alpha": 0.5}`` (values parsed as Python literals)."""
    values = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE")
        key, raw = pair.split("=", 1)
        try:
            values[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            values[key] = raw
    return values


MAX_SEED = 2**63 - 1  # torch.manual_seed takes a signed 64-bit seed


def check_device(name: str) -> None:
    """Raise :class:`ConfigError` unless ``name`` is a torch device that exists on this machine
    (checked before any data or teacher is touched, so a missing GPU is not found after training)."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ConfigError(f"--device {name!r} is not a torch device ({exc}); e.g. cpu, cuda, cuda:1") from None
    if device.type == "cpu":
        return
    if device.type != "cuda":
        raise ConfigError(f"--device {name!r}: device type {device.type!r} is not supported; use cpu or cuda[:N]")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise ConfigError(f"--device {name!r}: this machine has no usable CUDA GPU (torch {torch.__version__}); "
                          "use --device cpu")
    if device.index is not None and device.index >= count:
        raise ConfigError(f"--device {name!r}: this machine has {count} CUDA GPU(s), cuda:0..cuda:{count - 1}")


def check_writable_folder(path: str | Path, option: str) -> None:
    """Raise :class:`ConfigError` unless ``path`` is a folder (or can become one) that this user can
    write: a probe file is created and removed in it, or in its nearest existing parent."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is not a folder")
    probe_in = path
    while not probe_in.exists():
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise ConfigError(f"{option} {path}: {probe_in} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".tmp-probe-", dir=probe_in)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot write in {probe_in} ({exc.strerror})") from None


def check_run_args(args: argparse.Namespace) -> None:
    """The checks every command that trains runs first: the device, seeds in 0..2^63-1, ``--jobs`` of
    at least 1, and a writable results folder. Each failure is one line naming the option and value."""
    check_device(args.device)
    for seed in getattr(args, "seeds", None) or ():
        if not 0 <= seed <= MAX_SEED:
            raise ConfigError(f"--seeds {seed}: a seed must be in 0..2^63-1 ({MAX_SEED})")
    jobs = getattr(args, "jobs", 1)
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: must be at least 1")
    workers = getattr(args, "workers", None)
    if workers is not None and workers < 0:
        raise ConfigError(f"--workers {workers}: must be 0 (read in the main process) or more")
    if getattr(args, "results", None):
        check_writable_folder(args.results, "--results")


def check_options_apply(method: str, args: argparse.Namespace) -> None:
    """Teacher options the method would silently ignore are errors: ``--teacher`` for a method
    without a single teacher, ``--ensemble-teacher`` for one without an ensemble, ``--teacher-sha256``
    without ``--teacher``."""
    from bench.registry import METHODS

    cls = METHODS.get(method)
    if args.teacher_sha256 and not args.teacher:
        raise ConfigError("--teacher-sha256 checks the file given with --teacher, and no --teacher was given")
    if args.teacher and (not cls.teacher_features or cls.multi_teacher):
        use = "give its teachers with --ensemble-teacher" if cls.multi_teacher else "it learns from no teacher"
        raise ConfigError(f"--teacher does not apply to method {method!r}: {use}")
    if args.ensemble_teacher and not cls.multi_teacher:
        raise ConfigError(f"--ensemble-teacher does not apply to method {method!r}: it learns from "
                          f"{'one teacher (use --teacher)' if cls.teacher_features else 'no teacher'}")


def _tensorboard_dir(args: argparse.Namespace) -> str | None:
    """``--tensorboard DIR``, checked (TensorBoard installed, DIR writable) before anything runs."""
    folder = getattr(args, "tensorboard", None)
    if folder:
        from bench.epoch_log import check_tensorboard

        check_tensorboard()
        check_writable_folder(folder, "--tensorboard")
    return folder


def _options(args: argparse.Namespace, **extra):
    from bench.precision import check_precision
    from bench.runner import RunOptions

    check_run_args(args)
    return RunOptions(
        device=args.device, teacher_output_cache=not args.no_teacher_cache,
        data_root=args.data_root, progress=not args.quiet, force=args.force, workers=args.workers,
        validate_epochs=getattr(args, "validate_epochs", False),
        checkpoint_every=getattr(args, "checkpoint_every", 0), precision=check_precision(args.precision),
        tensorboard=_tensorboard_dir(args), **extra,
    )


def cmd_list(args: argparse.Namespace) -> int:
    from bench.protocol import get_protocol
    from bench.registry import DATASETS, METHODS, MODELS, PLUGIN_ERRORS, PROTOCOLS, TASKS

    def names(registry) -> str:  # a plugin's entries say where they come from
        return ", ".join(f"{n} [{registry.source(n)}]" if registry.is_plugin(n) else n for n in registry.names())

    def origin(registry, name: str) -> str:
        return f"  [{registry.source(name)}]" if registry.is_plugin(name) else ""

    print("tasks:     " + names(TASKS))
    print("methods:")
    for name in METHODS.names():
        cls = METHODS.get(name)
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"  {name:<12} {summary}  defaults={cls.defaults}{origin(METHODS, name)}")
    print("protocols:")
    for name in PROTOCOLS.names():
        p = get_protocol(name)
        print(f"  {name:<24} task={p.task} tier={p.tier} version={p.version} hash={p.short_hash} "
              f"seeds={list(p.seeds)}{origin(PROTOCOLS, name)}")
    print("models:    " + names(MODELS))
    print("datasets:  " + names(DATASETS))
    print("built-ins come from this package; plugins from installed distributions' kdbench.* entry points")
    from tasks.openmmlab import INSTALL_HINT, available

    if not (available("mmdet") and available("mmseg")):
        print("OpenMMLab backend: not installed here, so its smoke protocols are not registered and its models "
              f"(mmdet_*, mmseg_*) cannot be built; {INSTALL_HINT}")
    if PLUGIN_ERRORS:
        print("plugins not loaded:")
        for plugin, error in PLUGIN_ERRORS:
            print(f"  {plugin}: {error}")
    return 0


def launch_ddp(args: argparse.Namespace, argv: list[str]) -> int:
    """``kdbench run --gpus N``: the same command under ``torchrun --standalone --nproc-per-node N`` (one
    process per GPU, :mod:`bench.distributed`); returns torchrun's exit status."""
    import subprocess

    import torch

    if not args.device.startswith("cuda"):
        raise ConfigError(f"--gpus {args.gpus}: needs --device cuda (for CPU processes use torchrun "
                          f"--nproc-per-node {args.gpus} kdbench run ... --device cpu)")
    check_device(args.device)
    if torch.cuda.device_count() < args.gpus:
        raise ConfigError(f"--gpus {args.gpus}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    rest, skip = [], False
    for arg in argv:  # the command again, without --gpus
        if skip:
            skip = False
        elif arg == "--gpus":
            skip = True
        elif not arg.startswith("--gpus="):
            rest.append(arg)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.gpus}",
               "-m", "bench.cli", *rest]
    print("launching: " + " ".join(command), flush=True)
    return subprocess.run(command, check=False).returncode


def cmd_run(args: argparse.Namespace) -> int:
    from bench import distributed

    if args.gpus and args.gpus > 1 and not distributed.launched_by_torchrun():
        return launch_ddp(args, args.argv)
    world, args.device = distributed.init_from_env(args.device)
    try:
        return _run_seeds(args, world)
    finally:
        distributed.shutdown()


def _run_seeds(args: argparse.Namespace, world) -> int:
    from bench.registry import METHODS
    from bench.results import ResultsStore
    from bench.identity import data_fingerprint
    from bench.runner import Workspace, build_method, run_identity, run_one

    say = print if world.is_main else (lambda *a, **k: None)  # under DDP, rank 0 speaks
    base = chosen_protocol(args)
    protocol = protocol_for_data(base, args.dataset, args.data_root)
    METHODS.get(args.method)  # unknown names fail before any data is touched
    check_options_apply(args.method, args)
    seeds = tuple(args.seeds) if args.seeds else protocol.seeds
    options = _options(args, teacher_file=args.teacher, teacher_sha256=args.teacher_sha256,
                       ensemble_files=tuple(args.ensemble_teacher), hparams=parse_sets(args.set),
                       protocol_source=file_source(args.protocol_file) if args.protocol_file else None,
                       # a line per epoch where no progress bar shows (a log file, a pipe)
                       epoch_lines=world.is_main and not args.quiet and not sys.stdout.isatty())
    options.data_root = data_root_of(protocol, options.data_root)
    build_method(protocol, args.method, options.hparams)  # types and ranges of --set, before any data
    store = ResultsStore(args.results)
    workspace, data = None, data_fingerprint(protocol.dataset, options.data_root)
    for seed in seeds:
        identity = run_identity(protocol, args.method, seed, options, data)
        variant = f" [{identity['label']}]" if identity["label"] else ""
        name = f"{protocol.key} {args.method}{variant} seed {seed}"
        if store.exists(protocol.key, identity) and not args.force:
            say(f"{name}: already in {store.path(protocol.key, identity)} (use --force to rerun)")
            continue
        workspace = workspace or Workspace(protocol, options)
        record = run_one(protocol, args.method, seed, store, options, workspace)
        if record is None:  # a DDP rank other than 0
            continue
        shown = ", ".join(f"{k}={'n/a' if v is None else f'{v:.2f}'}" for k, v in record["metrics"].items())
        print(f"{name}: {shown} ({record['cost']['train_seconds']:.1f}s) -> {store.path(protocol.key, identity)}")
    return 0


def chosen_protocol(args: argparse.Namespace):
    """``run``'s protocol: the registered ``--protocol``, or the user's ``--protocol-file`` (read and checked
    like a built-in one: :func:`bench.protocol_file.read_protocol_file`)."""
    from bench.protocol import get_protocol
    from bench.protocol_file import read_protocol_file

    if bool(args.protocol) == bool(args.protocol_file):
        raise ConfigError("give exactly one of --protocol NAME or --protocol-file FILE")
    return read_protocol_file(args.protocol_file) if args.protocol_file else get_protocol(args.protocol)


def file_source(path: str) -> str:
    """How a record names the ``--protocol-file`` its protocol came from: path and sha256."""
    from bench.paths import sha256_file

    return f"file {Path(path).resolve()} (sha256 {sha256_file(path)})"


def data_root_of(protocol, data_root: str | None) -> str | None:
    """The folder a run of ``protocol`` reads for ``--data-root``: its dataset's own folder inside it
    (:func:`bench.datacheck.locate_data_root`), so that one --data-root may hold several datasets and a
    record's data fingerprint covers its dataset's files only."""
    from bench.datacheck import locate_data_root

    return locate_data_root(protocol.dataset.get("name"), data_root)


def render(results: str | Path, out: str | Path, overwrite: bool = False) -> str:
    """Write the leaderboard of the records in ``results`` to ``out`` (only files kdbench wrote there are
    replaced or removed, unless ``overwrite``: :mod:`leaderboard.manifest`); returns the Markdown."""
    from leaderboard.render import write_leaderboard

    return write_leaderboard(results, out, overwrite=overwrite)[0].read_text()


def print_protocol_table(results: Path, protocol, heading: str) -> None:
    """``heading``, then ``protocol``'s table rendered from every record of it in ``results``."""
    from bench.results import iter_records
    from leaderboard.render import build_tables, render_sections

    print(f"\n{heading}\n", flush=True)
    print(render_sections(build_tables(iter_records(results / protocol.key))), flush=True)


def table_printer(results: Path, total: int):
    """What ``suite`` calls when a protocol's last run is done: print that protocol's table, from every
    record of it in ``results``, so the first table is on screen long before the whole tier is done."""
    shown = []

    def show(protocol) -> None:
        shown.append(protocol.key)
        print_protocol_table(results, protocol,
                             f"{protocol.key}: all its runs are done (protocol {len(shown)} of at most {total})")

    return show


def provisional_printer(results: Path):
    """What ``suite`` calls when every method of a protocol has its first seed done and more seeds are
    to come: that protocol's table so far, said to be provisional (the records of one seed, no
    comparison stands on them)."""
    def show(protocol, seed: int) -> None:
        print_protocol_table(results, protocol,
                             f"{protocol.key}: provisional table, every method's seed {seed} is done and "
                             f"{len(protocol.seeds) - 1} more seed(s) are running; the final table, with its "
                             "comparisons, follows when they are")

    return show


def render_folders(args: argparse.Namespace) -> tuple[Path, Path]:
    """(records, tables) of ``suite`` and ``leaderboard``: RESULTS and ``--out`` (default RESULTS/leaderboard);
    the published folders with ``--publish`` only."""
    if args.publish:
        if args.out:
            raise ConfigError(f"--publish writes the tables to {PUBLISHED_TABLES}; drop --out {args.out}")
        return PUBLISHED_RECORDS, PUBLISHED_TABLES
    results = Path(args.results)
    return results, not_published(Path(args.out) if args.out else results / "leaderboard")


def refuse_dirty_publish() -> None:
    """Stop ``--publish`` before any training unless the checkout is clean: every published record
    names a commit, and only an unmodified tree makes that commit reproduce it (issue 11 §2)."""
    from bench.provenance import dirty_files

    dirty = dirty_files()
    if dirty is None:
        raise ConfigError("--publish needs a git checkout: published records must name the commit that produced them")
    if dirty:
        shown = ", ".join(dirty[:10]) + (f" and {len(dirty) - 10} more" if len(dirty) > 10 else "")
        raise ConfigError(f"--publish refuses a dirty tree: {len(dirty)} tracked file(s) modified ({shown}); "
                          "commit or stash them first, so that the records' commit reproduces them")


def not_published(out: Path) -> Path:
    """``out``, unless it is (or is inside) a published folder, which only ``--publish`` writes."""
    for folder in (PUBLISHED_TABLES, PUBLISHED_SWEEPS, PUBLISHED_RECORDS, REGRESSION_REFERENCE):
        if out.resolve() == folder.resolve() or folder.resolve() in out.resolve().parents:
            raise ConfigError(f"output folder {out} is inside the published {folder}, which is written only "
                              "with --publish; choose another --out")
    return out


def suite_protocols(args: argparse.Namespace) -> list:
    """The protocols ``suite`` runs: ``--protocols`` and ``--protocol-file``s (else the tier's), each on
    ``--dataset`` when given (:func:`bench.protocol.protocol_for_data`). With ``--dataset``, every chosen
    protocol must be of a task that has it, else one error lists those that are not (before anything runs).
    Full-tier protocols are returned as they are: :func:`bench.full_tier.plan_full` checks their data."""
    from bench.protocol import get_protocol, protocols_of_tier
    from bench.protocol_file import read_protocol_file

    chosen = [get_protocol(name) for name in args.protocols or ()]
    chosen += [read_protocol_file(path) for path in args.protocol_file]
    if not chosen:
        chosen = protocols_of_tier(args.tier)
    if args.dataset is None:
        return [p if p.tier == "full" else protocol_for_data(p, None, args.data_root) for p in chosen]
    if args.dataset is not None:
        other = [p for p in chosen if args.dataset not in REAL_DATASETS.get(p.task, {})
                 and p.dataset.get("name") != args.dataset]
        if other:
            tasks = sorted(task for task, names in REAL_DATASETS.items() if args.dataset in names)
            raise ConfigError(f"--dataset {args.dataset!r} is a dataset of task {' or '.join(tasks) or '(none)'}; "
                              f"these chosen protocols are of another task: "
                              f"{', '.join(f'{p.name} ({p.task})' for p in other)}; choose with --protocols "
                              f"(real datasets: {', '.join(sorted(DATASETS_READING_A_ROOT))})")
    return [protocol_for_data(p, args.dataset, args.data_root) for p in chosen]


def suite_executor(args: argparse.Namespace):
    """``--executor``: None for the local process pool, else a factory of the Ray executor (checked now)."""
    if args.executor == "local":
        if args.address:
            raise ConfigError("--address names a Ray cluster: it needs --executor ray")
        return None
    from functools import partial

    from bench.ray_executor import RayExecutor, check_ray

    check_ray()
    gpus = args.gpus_per_run if args.gpus_per_run is not None else (1 if args.device.startswith("cuda") else 0)
    if args.cpus_per_run <= 0 or gpus < 0:
        raise ConfigError(f"--cpus-per-run {args.cpus_per_run} / --gpus-per-run {gpus}: must be > 0 / >= 0")
    return partial(RayExecutor, args.address, args.cpus_per_run, gpus)


def cmd_suite(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from bench import distributed

    if distributed.launched_by_torchrun():
        raise ConfigError("kdbench suite does not run under torchrun (its runs go to a pool of processes); "
                          "train one run with DDP with `kdbench run --gpus N` or `torchrun ... kdbench run`")

    from bench.protocol_file import read_protocol_file
    from bench.suite import run_suite
    from leaderboard.render import check_leaderboard_output

    results, out = render_folders(args)
    executor = suite_executor(args)
    if args.publish:
        if args.dataset:
            raise ConfigError(f"--publish with --dataset {args.dataset}: the published leaderboard holds only "
                              "records a clean clone reproduces, and a real dataset is not in the repository; "
                              "run without --publish into your own --results")
        if args.protocol_file:
            raise ConfigError("--publish with --protocol-file: the published leaderboard holds only protocols a "
                              "clean clone has; run your protocol file without --publish into your own --results")
        refuse_dirty_publish()
    chosen = suite_protocols(args)
    keys = {p.key for p in chosen}  # the store's top folders are protocol keys
    keys |= {d.name for d in results.iterdir() if d.is_dir()} if results.is_dir() else set()
    check_leaderboard_output(out, sorted(keys), args.overwrite)  # refuse now, not after the runs
    options = _options(args)
    sources = {read_protocol_file(path).key: file_source(path) for path in args.protocol_file}
    others = [p for p in chosen if p.tier != "full" and p.key not in sources]
    groups = [(others, replace(options, data_root=data_root_of(others[0], options.data_root)) if others else options)]
    groups += [([p], replace(options, data_root=data_root_of(p, options.data_root), protocol_source=sources[p.key]))
               for p in chosen if p.tier != "full" and p.key in sources]
    full = [p for p in chosen if p.tier == "full"]
    if full:  # each runs with its dataset's folder and teacher file, or is skipped saying why
        from bench.full_tier import describe_plan, plan_full

        planned, skipped = plan_full(full, args.data_root, args.teacher_dir)
        print(describe_plan(planned, skipped))
        groups += [([p.protocol], replace(options, data_root=p.data_root, teacher_file=p.teacher_file,
                                          protocol_source=sources.get(p.protocol.key))) for p in planned]
    show = table_printer(results, sum(len(protocols) for protocols, _ in groups)) if not args.quiet else None
    early = provisional_printer(results) if not args.quiet else None
    for protocols, group_options in groups:
        if protocols:
            run_suite(args.tier, str(results), group_options, jobs=args.jobs, methods=args.methods,
                      protocols=protocols, on_protocol_done=show, on_first_seed_done=early,
                      executor=executor)
    if not results.is_dir():  # every protocol skipped (full data missing): nothing to render, not a failure
        print(f"no records in {results}: nothing ran, no tables written")
        return 0
    print(render(results, out, args.overwrite))
    print(f"tables written to {out}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from bench.protocol import get_protocol
    from bench.sweep import run_assistant_sweep
    from leaderboard.manifest import check_targets
    from leaderboard.sweep import render_sweep_markdown, sweep_file_names, write_sweep

    results, sweeps = Path(args.results), Path(args.sweeps)
    out = not_published(Path(args.out) if args.out else sweeps) if not args.publish else PUBLISHED_SWEEPS
    if args.publish:
        refuse_dirty_publish()
        results, sweeps = PUBLISHED_RECORDS, PUBLISHED_SWEEPS / "records"
    protocol = get_protocol(args.protocol)
    check_targets(out, sweep_file_names(protocol.key), args.overwrite)  # refuse now, not after the runs
    table = run_assistant_sweep(protocol, results, sweeps, _options(args), jobs=args.jobs)
    paths = write_sweep(table, out, args.overwrite)
    print(render_sweep_markdown(table))
    print("written: " + ", ".join(str(p) for p in paths))
    return 0


def cmd_verify_record(args: argparse.Namespace) -> int:
    """Rerun one record's seed and compare its metrics; see :mod:`bench.verify`."""
    from bench.results import verified_path
    from bench.runner import RunOptions
    from bench.verify import verify_record

    if args.tolerance < 0:
        raise ConfigError(f"--tolerance {args.tolerance}: must be >= 0 (metric points)")
    options = RunOptions(device=args.device, data_root=args.data_root, teacher_file=args.teacher,
                         ensemble_files=tuple(args.ensemble_teacher), progress=not args.quiet)
    protocol = None
    if args.protocol_file:
        from bench.protocol_file import read_protocol_file

        protocol = read_protocol_file(args.protocol_file)
    checks, _ = verify_record(args.file, options, args.tolerance, args.results, protocol)
    bad = [c for c in checks if not c.ok]
    for c in bad:
        print(f"{c.metric}: recorded {c.recorded}, rerun {c.rerun}")
    if bad:
        print(f"{args.file}: {len(bad)} of {len(checks)} metrics differ (tolerance {args.tolerance}); not verified")
        return 1
    print(f"{args.file}: all {len(checks)} metrics reproduced (tolerance {args.tolerance}); "
          f"verified -> {verified_path(args.file)}")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    """Write a submission bundle (:mod:`bench.submission`); refused, listing every problem, if incomplete."""
    from bench.protocol import get_protocol
    from bench.submission import bundle_name, make_bundle, write_bundle

    protocol = get_protocol(args.protocol)
    bundle = make_bundle(protocol, args.method, args.results, args.entry)
    out = Path(args.out) if args.out else Path(bundle_name(protocol.key, args.method))
    if out.exists() and not out.name.endswith(".kdbench.json"):
        raise ConfigError(f"--out {out}: exists and is not a bundle; give a new path ending in .kdbench.json")
    write_bundle(bundle, out)
    print(f"{out}: {protocol.key} {args.method} entry {bundle['entry']['id'][:12]} "
          f"({bundle['entry']['label'] or 'default'}), seeds {bundle['seeds']}, commit "
          f"{(bundle['environment']['commit'] or '?')[:10]}, method source {bundle['method']['file']} "
          f"sha256 {bundle['method']['sha256'][:12]} ({bundle['method']['origin']})")
    print(f"rerun: {bundle['command']}")
    print(f"verify: kdbench verify {out} --seeds {bundle['seeds'][0]}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Check a bundle and rerun seeds of it (:mod:`bench.submission`)."""
    from bench.runner import RunOptions
    from bench.submission import verify_bundle

    check_device(args.device)
    if args.import_to:
        check_writable_folder(args.import_to, "--import")
    options = RunOptions(device=args.device, progress=not args.quiet)
    report = verify_bundle(args.bundle, args.seeds, options, args.by, args.import_to)
    for line in report["mismatches"]:
        print(line)
    if not report["ok"]:
        print(f"{args.bundle}: {len(report['mismatches'])} mismatch(es), mode {report['mode']}; not verified")
        return 1
    print(f"{args.bundle}: seeds {report['seeds']} reproduced ({report['mode']}); verified by {report['by']} at "
          f"{report['time']}" + (f"; records imported into {args.import_to}" if args.import_to else ""))
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    """``kdbench data check NAME --data-root DIR``: exit 0 when the dataset is there and complete, 1 when
    not (the report names what is missing, the expected layout and the official download page)."""
    from bench.datacheck import check_data

    report = check_data(args.name, args.data_root)
    print(report.text())
    return 0 if report.complete else 1


def cmd_teachers(args: argparse.Namespace) -> int:
    """``kdbench teachers list|ship|verify``: the repository's shipped teachers (:mod:`bench.shipped_teachers`)."""
    from bench.protocol import get_protocol, protocols_of_tier
    from bench.registry import PROTOCOLS
    from bench.runner import RunOptions
    from bench.shipped_teachers import manifest, ship_protocol, shipped_root, verify_protocol

    if args.teachers_command == "list":
        entries = manifest()
        if not entries:
            print(f"no shipped teachers in {shipped_root()}")
        for _, entry in sorted(entries.items(), key=lambda kv: (kv[1]["protocol"], kv[1]["role"], kv[1]["model"])):
            name = entry["protocol"].split("@")[0]
            primary = get_protocol(name).primary_metric if name in PROTOCOLS else None
            shown = {k: v for k, v in entry["metrics"].items() if k == primary} or entry["metrics"]
            metrics = ", ".join(f"{k} {v:.2f}" for k, v in shown.items() if isinstance(v, float | int))
            print(f"{entry['protocol']} {entry['role']} {entry['model']}: {entry['file']} ({metrics}; shipped from "
                  f"{(entry.get('shipped_from_commit') or '?')[:7]}, {entry.get('processor')})")
        return 0
    protocols = [get_protocol(name) for name in args.protocols] if args.protocols else protocols_of_tier("mini")
    options = RunOptions(progress=not args.quiet)
    if args.teachers_command == "ship":
        for protocol in protocols:
            print("\n".join(ship_protocol(protocol, options)), flush=True)
        return 0
    all_ok = True
    with tempfile.TemporaryDirectory(prefix="kdbench-verify-") as cache:
        for protocol in protocols:
            lines, ok = verify_protocol(protocol, options, Path(cache) / protocol.name)
            print("\n".join(lines), flush=True)
            all_ok = all_ok and ok
    return 0 if all_ok else 1


def cmd_leaderboard(args: argparse.Namespace) -> int:
    if args.html:
        return write_html_site(args)
    results, out = render_folders(args)
    print(render(results, out, args.overwrite))
    print(f"tables written to {out}")
    return 0


SITE_MARKER = ".kdbench-site"


def write_html_site(args: argparse.Namespace) -> int:
    """``kdbench leaderboard --html OUT``: the static site (:mod:`leaderboard.site`). OUT must be new, empty, or
    a site kdbench wrote (its marker file); anything else is refused naming a file unless ``--overwrite``."""
    from leaderboard.site import write_site

    results = PUBLISHED_RECORDS if args.publish else Path(args.results)
    out = Path(args.html)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--html {out}: exists and is not a folder")
    foreign = sorted(p for p in out.rglob("*") if p.is_file()) if out.is_dir() else []
    if foreign and not (out / SITE_MARKER).is_file() and not args.overwrite:
        raise ConfigError(f"--html {out}: the folder holds files kdbench did not write (e.g. {foreign[0]}); give a "
                          "new or empty folder, or --overwrite")
    check_writable_folder(out, "--html")
    files = write_site(results, out)
    (out / SITE_MARKER).write_text("written by kdbench leaderboard --html; rewritten on every run\n")
    print(f"{len(files)} files of the leaderboard site written to {out} (open {out / 'index.html'})")
    return 0


PROFILE_COLUMNS = (("model", "{}"), ("input_size", "{}"), ("params", "{:,}"), ("gmacs", "{:.4f}"),
                   ("latency_ms", "{:.3f}"), ("latency_iqr_ms", "{:.3f}"), ("throughput_per_s", "{:,.0f}"),
                   ("throughput_batch", "{}"))


def build_any_model(name: str, num_classes: int):
    """A registered model, else a timm model built without pretrained weights."""
    from bench.errors import UnknownNameError
    from bench.registry import MODELS

    if name in MODELS:
        return MODELS.get(name)(num_classes=num_classes)
    import timm

    if name not in timm.list_models():
        raise UnknownNameError("model", name, MODELS.names(), hint="or any name in timm.list_models()")
    return timm.create_model(name, pretrained=False, num_classes=num_classes)


def cmd_profile(args: argparse.Namespace) -> int:
    import json

    from bench.profile import profile_model

    if bool(args.protocol) == bool(args.model):
        raise ConfigError("give exactly one of --protocol or --model")
    check_device(args.device)
    if args.protocol:
        from bench.protocol import get_protocol
        from bench.runner import RunOptions, Workspace

        protocol = get_protocol(args.protocol)
        ws = Workspace(protocol, RunOptions(device=args.device, data_root=args.data_root))
        classes = len(ws.splits["train"].classes)
        jobs = [(protocol.teacher.model, ws.input_size, protocol.schedule.batch_size, classes),
                (protocol.student, ws.input_size, protocol.schedule.batch_size, classes)]
        threads = args.threads or protocol.threads
    else:
        jobs = [(args.model, tuple(args.input_size), args.batch_size, args.num_classes)]
        threads = args.threads or 1
    profiles = [
        profile_model(build_any_model(name, classes), name, size, batch, args.device, threads).to_dict()
        for name, size, batch, classes in jobs
    ]
    if args.json:
        print(json.dumps(profiles, indent=2))
        return 0
    rows = [[fmt.format("x".join(map(str, p[k])) if k == "input_size" else p[k]) for k, fmt in PROFILE_COLUMNS]
            for p in profiles]
    header = [k for k, _ in PROFILE_COLUMNS]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    for line in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)))
    env = profiles[0]
    print(f"device {env['device']} ({env['device_name']}), {env['threads']} thread(s), torch {env['torch']}, "
          f"{env['dtype']}; latency: batch 1, median of {env['latency_repeats']} calls; MACs = FLOPs / 2 "
          "(conv, linear, matmul; element-wise ops not counted)")
    return 0


def cmd_regress(args: argparse.Namespace) -> int:
    """The accuracy gate; see :mod:`bench.regress` (and ``kdbench regress --help``)."""
    from bench import regress
    from bench.protocol import protocols_of_tier
    from bench.results import iter_records

    reference = Path(args.reference or (PUBLISHED_RECORDS if args.tier == "mini" else REGRESSION_REFERENCE))
    protocols_of_tier(args.tier)  # an unknown tier fails before anything else
    if args.update and reference.resolve() == PUBLISHED_RECORDS.resolve():
        raise ConfigError(f"--update does not replace the published records in {PUBLISHED_RECORDS}; "
                          "publish with `kdbench suite --publish`")
    if args.records:
        current_root = Path(args.records)
        if not current_root.is_dir():
            raise ConfigError(f"--records {current_root} is not a folder; nothing was compared or changed")
    failed = 0
    if args.check_published or not (args.skip_published or args.update):
        if not Path(args.published).exists() and args.published == str(PUBLISHED_RECORDS):
            print(f"no published records in {PUBLISHED_RECORDS}: nothing to check there")
        else:
            checks, superseded = regress.check_published(iter_records(args.published))
            bad = [c for c in checks if c.failed]
            if bad or args.check_published:
                print(regress.format_checks(checks, failed_only=not args.check_published))
            print(f"published records in {args.published}: {len(checks) - len(bad)} of {len(checks)} match "
                  f"the code's protocols and defaults; {superseded} of superseded protocol versions not checked")
            failed += len(bad)
        if args.check_published:
            return 1 if failed else 0
    if not args.records:
        from bench.suite import run_suite

        if reference.is_dir() and not args.update:  # the old reference may be unreadable when replacing it
            minutes = regress.estimate_seconds(iter_records(reference)) / 60
            print(f"running the {args.tier} tier: about {minutes:.0f} min of training on one core "
                  f"(the reference records' train_seconds), {args.jobs} job(s) in parallel")
        current_root = Path(args.results or tempfile.mkdtemp(prefix="kdbench-regress-"))
        run_suite(args.tier, str(current_root), _options(args), jobs=args.jobs)
    if args.update:
        copied = regress.update_reference(current_root, reference, args.tier)
        print(f"reference replaced: {copied} records from {current_root} now in {reference}")
        return 0
    tolerance = args.tolerance if args.tolerance is not None else regress.EXACT_TOLERANCE
    current, references = list(iter_records(current_root)), list(iter_records(reference))
    mode, note = args.mode, regress.environment_note(current, references)
    if mode == "auto":  # exact on the reference's own environment; elsewhere exact cannot hold
        mode = "stat" if note else "exact"
        print(f"mode: {mode} ({note or 'the records come from the reference environment'})")
    checks = regress.compare(current, references, mode=mode, tolerance=tolerance, k=args.k)
    print(regress.format_checks(checks, failed_only=args.failures_only))
    print(regress.summary(checks))
    failed += sum(c.failed for c in checks)
    if mode == "exact" and any(c.status == "changed" for c in checks):
        print(note or
              "values changed: a deliberate change (or a rewrite that changes rounding) is checked with "
              "--mode stat and recorded with --update, in the same review")
    return 1 if failed else 0


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument("--force", action="store_true", help="rerun (protocol, method, seed) already in the results")
    p.add_argument("--no-teacher-cache", action="store_true",
                   help="run the teacher live instead of reusing its cached outputs")
    p.add_argument("--data-root", help="folder of a real dataset for protocols that read one")
    p.add_argument("--workers", type=int, metavar="N",
                   help="data-loader worker processes for streamed datasets (ImageFolder, ImageNet); 0 reads in "
                        "the main process; results do not depend on it (default: CPU cores - 1, at most 8)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="also write each run's per-epoch log (losses, rate, speed, validation) to TensorBoard under "
                        "DIR/<protocol>/<method>/<entry>/seed-N, as it trains (needs the tensorboard extra)")
    p.add_argument("--precision", default="fp32", metavar="P",
                   help="training precision: fp32 (default), bf16 or fp16 (autocast forward passes, losses in fp32, "
                        "fp16 with a loss scaler); a bf16/fp16 run is its own entry, labelled so; metrics in fp32")
    p.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                   help="save the run's state every N epochs next to its record (seed-K.ckpt.pt, deleted when the "
                        "record is written); rerunning a killed run resumes from it (default: 0, none)")
    p.add_argument("--validate-epochs", action="store_true",
                   help="evaluate the student on the validation split after every epoch, into the per-epoch log "
                        "next to each record (seed-N.epochs.csv); its time is not training time, no number changes")


def _add_dataset_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", metavar="NAME",
                   help="read this real-format dataset from --data-root in place of the protocol's generated one "
                        "(the protocol becomes <protocol>+NAME, key <protocol>+NAME@v<version>; one of "
                        f"{', '.join(sorted(DATASETS_READING_A_ROOT))})")


def _add_overwrite_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="replace files in the output folder that kdbench did not write (by default such a file "
                        "stops the command before anything runs, naming it)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kdbench", description="Knowledge-distillation benchmark suite.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="registered tasks, methods, protocols, models and datasets")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="train and evaluate one method on one protocol, one record per seed")
    p.add_argument("--protocol", help="a registered protocol (kdbench list)")
    p.add_argument("--protocol-file", metavar="FILE",
                   help="a protocol of your own, TOML (.toml) or JSON (.json) with the fields of a protocol "
                        "(name, task, tier, version, dataset, student, teacher, schedule, augmentation, metrics, "
                        "primary_metric, seeds, ...), checked and hashed like a registered one; instead of "
                        "--protocol")
    p.add_argument("--method", required=True)
    p.add_argument("--seeds", type=int, nargs="+", help="default: the protocol's seeds")
    p.add_argument("--gpus", type=int, metavar="N",
                   help="train each seed with DDP on N GPUs of this machine (starts torchrun; the run is its own "
                        "entry, 'N processes'); the same command under torchrun --nproc-per-node N also works")
    p.add_argument("--results", default=DEFAULT_RESULTS, help=f"results folder (default: {DEFAULT_RESULTS})")
    p.add_argument("--teacher", help="a teacher state-dict file to use instead of the suite-trained one")
    p.add_argument("--teacher-sha256", help="expected sha256 of --teacher; a mismatch stops the run")
    p.add_argument("--ensemble-teacher", action="append", default=[], metavar="FILE",
                   help="a state-dict file for each of the protocol's ensemble teachers, in its order "
                        "(repeat; multi-teacher methods)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a method hyperparameter (repeatable)")
    _add_run_options(p)
    _add_dataset_option(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("suite",
                       help="the default benchmark: a tier's protocols x methods x seeds, then the leaderboard")
    p.add_argument("--tier", default="mini", help="smoke, mini or full (default: mini)")
    p.add_argument("--protocols", nargs="+", help="only these protocols")
    p.add_argument("--protocol-file", action="append", default=[], metavar="FILE",
                   help="also run this protocol of your own (TOML or JSON, as for `kdbench run`; repeatable); "
                        "with neither --protocols nor --protocol-file the tier's protocols run")
    p.add_argument("--teacher-dir", metavar="DIR",
                   help="full tier: each protocol's teacher file, found by model name as DIR/<model>.pth, "
                        "mdistiller's DIR/cifar_teachers/<model>_vanilla/ckpt_epoch_240.pth or RepDistiller's "
                        "DIR/<model>_vanilla/ckpt_epoch_240.pth, or by the file name a protocol pins (e.g. "
                        "resnet34-b627a593.pth); a teacher not found is trained by the suite, a pinned one "
                        "skips its protocol")
    p.add_argument("--methods", nargs="+", help="only these methods")
    p.add_argument("--jobs", type=int, default=2, help="parallel runs (default: 2)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="where the runs go: local, a pool of --jobs processes (default); ray, one Ray task per "
                        "run on the cluster at --address (default: a local Ray started for the suite), retried "
                        "and resumed from its checkpoint if its worker is lost (needs the ray extra)")
    p.add_argument("--address", help="--executor ray: the Ray cluster's address, e.g. 10.0.0.1:6379 or auto")
    p.add_argument("--cpus-per-run", type=float, default=1, help="--executor ray: CPUs each run asks for (1)")
    p.add_argument("--gpus-per-run", type=float,
                   help="--executor ray: GPUs each run asks for (default: 1 with --device cuda, else 0)")
    p.add_argument("--results", default=DEFAULT_RESULTS, help=f"results folder (default: {DEFAULT_RESULTS})")
    p.add_argument("--out", help="where to write the tables (default: RESULTS/leaderboard)")
    p.add_argument("--publish", action="store_true",
                   help=f"write records to {PUBLISHED_RECORDS} and tables to {PUBLISHED_TABLES}")
    _add_overwrite_option(p)
    _add_run_options(p)
    _add_dataset_option(p)
    p.set_defaults(func=cmd_suite)

    p = sub.add_parser("sweep", help="TAKD with every assistant size of a protocol's assistant_sweep: "
                                     "table and plot of student accuracy against assistant size")
    p.add_argument("--protocol", required=True, help="a protocol with an assistant_sweep, e.g. classification-gap")
    p.add_argument("--jobs", type=int, default=2, help="parallel runs (default: 2)")
    p.add_argument("--results", default=DEFAULT_RESULTS,
                   help=f"results folder holding (or receiving) the baseline and kd references (default: "
                        f"{DEFAULT_RESULTS})")
    p.add_argument("--sweeps", default="sweeps", help="folder of the sweep's own records (default: sweeps)")
    p.add_argument("--out", help="where to write the table and plot (default: SWEEPS)")
    p.add_argument("--publish", action="store_true",
                   help=f"use the published records and write the sweep to {PUBLISHED_SWEEPS}")
    _add_overwrite_option(p)
    _add_run_options(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("data", help="real datasets: `kdbench data check NAME --data-root DIR`")
    data = p.add_subparsers(dest="data_command", required=True)
    p = data.add_parser("check", help="whether a real dataset's files are in --data-root and complete (exit 1 "
                                      "if not, with the expected layout and the official download page)")
    p.add_argument("name", help="cifar100, cifar10, imagenet or imagefolder")
    p.add_argument("--data-root", required=True, help="the folder holding the dataset (or its usual subfolder)")
    p.set_defaults(func=cmd_data_check)

    p = sub.add_parser("teachers", help="the teachers shipped in leaderboard/teachers: list them, ship a "
                                        "protocol's, or retrain and compare (`kdbench teachers verify`)")
    teachers = p.add_subparsers(dest="teachers_command", required=True)
    teachers.add_parser("list", help="every shipped teacher: protocol, role, model, file, test metrics, where trained")
    for command, text in (("ship", "train (or take from the cache) the teachers, ensemble members and assistants "
                                   "of these protocols and add them to leaderboard/teachers"),
                          ("verify", "retrain each shipped teacher of these protocols from its recipe in a "
                                     "temporary cache and compare: bit-identical, or both test metrics (exit 1 "
                                     "when a file that should be bit-identical here is not)")):
        q = teachers.add_parser(command, help=text)
        q.add_argument("--protocols", nargs="+", help="these protocols (default: the mini tier's)")
        q.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_teachers)

    p = sub.add_parser("leaderboard", help="render Markdown and CSV tables from result records")
    p.add_argument("--results", default=DEFAULT_RESULTS, help=f"records folder (default: {DEFAULT_RESULTS})")
    p.add_argument("--out", help="tables folder (default: RESULTS/leaderboard)")
    p.add_argument("--html", metavar="OUT",
                   help="write the leaderboard as a static web site to OUT instead (index of tracks, a sortable page "
                        "per protocol, a page per method; works from file:// and any static host)")
    p.add_argument("--publish", action="store_true",
                   help=f"render the published records {PUBLISHED_RECORDS} into the published tables "
                        f"{PUBLISHED_TABLES} (never written otherwise)")
    _add_overwrite_option(p)
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("verify-record", help="rerun a record's seed; on identical metrics mark it verified "
                                             "(writes seed-<n>.verified.json next to it)")
    p.add_argument("file", help="a seed-<n>.json record")
    p.add_argument("--results", help="keep the rerun's record in this folder (default: a temporary one)")
    p.add_argument("--tolerance", type=float, default=0.0,
                   help="largest accepted difference per metric, in metric points (default: 0, exact)")
    p.add_argument("--teacher", help="the teacher file the record names (records distilled from a file)")
    p.add_argument("--ensemble-teacher", action="append", default=[], metavar="FILE",
                   help="the ensemble files the record names, in order (repeat)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--data-root", help="the real dataset the record was made from")
    p.add_argument("--protocol-file", metavar="FILE", help="the protocol file the record was made with (records "
                                                           "of a --protocol-file protocol)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_verify_record)

    p = sub.add_parser("submit", help="write a submission bundle: every seed's record of a method on a protocol, "
                                      "the method's source and origin, the environment and the rerun command")
    p.add_argument("--protocol", required=True, help="a registered protocol")
    p.add_argument("--method", required=True)
    p.add_argument("--results", default=DEFAULT_RESULTS, help=f"where the records are (default: {DEFAULT_RESULTS})")
    p.add_argument("--entry", metavar="ID", help="the entry (identity) to submit, by its first hex digits "
                                                 "(default: the method's default entry)")
    p.add_argument("--out", metavar="FILE", help="the bundle's path (default: ./<protocol key>__<method>.kdbench.json)")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("verify", help="check a submission bundle and rerun some of its seeds; on a match mark it "
                                      "verified (BUNDLE.verified.json), else list every mismatch")
    p.add_argument("bundle", help="a .kdbench.json file written by kdbench submit")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds to rerun (default: the bundle's first)")
    p.add_argument("--import", dest="import_to", metavar="DIR",
                   help="when verified, copy the bundle's records into this results folder, the rerun seeds marked "
                        "verified (e.g. leaderboard/records, then kdbench leaderboard --publish)")
    p.add_argument("--by", help="who verifies (default: user@host)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("profile", help="params, MACs/FLOPs, latency and throughput of a protocol's models or any model")
    p.add_argument("--protocol", help="profile this protocol's teacher and student at its input and batch size")
    p.add_argument("--model", help="a registered model or any timm model name (built without pretrained weights)")
    p.add_argument("--input-size", type=int, nargs="+", default=[3, 224, 224], metavar="DIM",
                   help="input size without the batch dimension, with --model (default: 3 224 224)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size of the throughput measurement")
    p.add_argument("--num-classes", type=int, default=1000, help="classifier size, with --model")
    p.add_argument("--threads", type=int, help="torch threads (default: the protocol's, or 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-root", help="dataset folder for protocols that read a real dataset")
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(func=cmd_profile)

    from bench.regress import EXACT_TOLERANCE, STAT_K

    p = sub.add_parser("regress", help="CI accuracy gate: compare fresh records with the committed reference")
    p.add_argument("--records", help="compare these records instead of running the tier")
    p.add_argument("--results", help="where to write the records of the run (default: a temporary folder)")
    p.add_argument("--tier", default="smoke", help="smoke (CI, the default) or mini (nightly/release: against "
                   "the published records; hours, see the estimate printed first)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--reference", help=f"reference records (default: {REGRESSION_REFERENCE} for smoke, "
                                       f"{PUBLISHED_RECORDS} for mini)")
    p.add_argument("--mode", default="auto", choices=("auto", "exact", "stat"),
                   help="exact: every value equal to the reference (the pinned CI machine); stat: seed means "
                        "within the cross-run noise (another machine or library version); auto (default): "
                        "exact when the records' environment (packages, python, processor, platform, device) "
                        "is the reference's, else stat, saying why")
    p.add_argument("--tolerance", type=float,
                   help=f"exact mode: largest |current - reference| that passes (default: {EXACT_TOLERANCE:g})")
    p.add_argument("--k", type=float, default=STAT_K,
                   help=f"stat mode: a mean fails k pooled standard errors below the reference (default: {STAT_K:g})")
    p.add_argument("--check-published", action="store_true",
                   help="only check that every published record matches the code's protocol and defaults "
                        "(no training; seconds)")
    p.add_argument("--skip-published", action="store_true", help="leave out the published-records check")
    p.add_argument("--published", default=str(PUBLISHED_RECORDS),
                   help=f"published records checked (default: {PUBLISHED_RECORDS})")
    p.add_argument("--failures-only", action="store_true", help="print only the failed checks and the summary")
    p.add_argument("--update", action="store_true",
                   help="replace the reference with these records, after validating them (nothing changes "
                        "if they are incomplete, unreadable or not finite)")
    _add_run_options(p)
    p.set_defaults(func=cmd_regress)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except KDBenchError as exc:
        print(f"kdbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a full disk, a folder made read-only meanwhile: one line naming the path
        where = f": {exc.filename}" if exc.filename else ""
        print(f"kdbench: error: {exc.strerror or exc}{where} (files are written atomically: no partial file "
              "was left)", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # Ctrl-C, or bench.errors.Interrupted for SIGINT/SIGTERM
        signum = getattr(exc, "signum", signal.SIGINT)
        for sig in (signal.SIGINT, signal.SIGTERM):  # stopping: a second Ctrl-C must not break the exit
            signal.signal(sig, signal.SIG_IGN)
        print(f"kdbench: stopped by {signal.Signals(signum).name}; every worker was stopped and no partial "
              "record was written", file=sys.stderr)
        return 128 + signum


if __name__ == "__main__":
    sys.exit(main())
