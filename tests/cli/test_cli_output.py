"""The command's output as a pipe sees it: --version, -v for INFO lines, --quiet for errors only, exit codes."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time

import pytest
import yaml

import corpusforge
from tests.support import alias_bomb, make_recipe, write_jsonl


def cli(*args: str, cwd) -> subprocess.CompletedProcess:
    # stdout and stderr are pipes, as in `corpusforge run … 2>&1 | cat`: no TTY
    return subprocess.run([sys.executable, "-m", "corpusforge.cli", *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture()
def recipe(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"text": f"document number {i}"} for i in range(5)])
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(make_recipe(tmp_path, str(tmp_path / "in.jsonl"), steps=[{"length": {}}])))
    return path


def test_version(tmp_path):
    done = cli("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"corpusforge {corpusforge.__version__}"


def test_verbose_shows_info_lines_and_default_does_not(tmp_path, recipe):
    default = cli("run", str(recipe), "--no-report", cwd=tmp_path)
    assert default.returncode == 0 and "INFO " not in default.stderr
    assert "5 rows" in default.stdout  # the summary
    verbose = cli("-v", "run", str(recipe), "--no-report", "-o", str(tmp_path / "v"), cwd=tmp_path)
    assert verbose.returncode == 0
    assert "INFO corpusforge.runner: stages done" in verbose.stderr
    # datatrove's per-task log on the console only with -v (carried to the tasks by the executor, no environment)
    assert "Launching pipeline for rank=0" in verbose.stderr and "Launching pipeline" not in default.stderr


def test_progress_in_a_log_is_plain_lines(tmp_path, recipe):
    # stderr is a pipe: no rich bar (it would draw nothing there) but plain lines, the last one when the build ends
    default = cli("run", str(recipe), "--no-report", cwd=tmp_path)
    lines = [line for line in default.stderr.splitlines() if line.startswith("building: ")]
    assert len(lines) == 1 and lines[0].endswith(" · done"), default.stderr  # a 1-second build: under the interval
    assert "5 docs" in lines[0] and "tasks 1/1" in lines[0] and "(100%)" in lines[0]
    assert "\r" not in default.stderr and "\x1b[" not in default.stderr  # no bar redrawn, no terminal codes


def test_plain_progress_lines(monkeypatch):
    import io

    from corpusforge import progress

    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    stream = io.StringIO()
    display = progress.PlainProgress(stream=stream, every=30)
    with display:
        task = display.add_task("base en", total=100)
        now[0] += 10
        display.update(task, completed=25)  # under the interval: no line
        now[0] += 20
        display.update(task, completed=40)
        resumed = display.add_task("training steps", total=50, completed=20)  # 20 done by an earlier run
        now[0] += 10
        display.update(resumed, completed=30)
        display.update(resumed, completed=50)
    assert stream.getvalue().splitlines() == [
        "base en: 40 / 100 (40%) · 1.3/s · 0:30 elapsed · ETA 0:45",
        "training steps: 50 / 50 (100%) · 3/s · 0:10 elapsed · done",
        "base en: 40 / 100 (40%) · 1/s · 0:40 elapsed · done",
    ]
    stopped = io.StringIO()
    with pytest.raises(KeyboardInterrupt), progress.PlainProgress(stream=stopped, every=30) as display:
        quick, slow = display.add_task("quick", total=10), display.add_task("building", total=10)
        now[0] += 40
        display.update(slow, completed=4)
        raise KeyboardInterrupt
    # the task that had lines in the log gets its last one; one stopped before its first line adds none (an error
    # message after it stays the one line)
    assert stopped.getvalue().splitlines() == [
        "building: 4 / 10 (40%) · 0.1/s · 0:40 elapsed · ETA 1:00",
        "building: 4 / 10 (40%) · 0.1/s · 0:40 elapsed · stopped",
    ]
    assert quick == 0


def test_quiet_prints_nothing_but_errors(tmp_path, recipe):
    done = cli("run", str(recipe), "--quiet", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert (tmp_path / "out" / "manifest.json").is_file()
    bad = cli("run", str(tmp_path / "missing.yaml"), "-q", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stdout == "" and "error:" in bad.stderr and "missing.yaml" in bad.stderr


def test_log_level_and_help_name_the_exit_codes(tmp_path, recipe):
    done = cli("run", str(recipe), "--log-level", "info", "--no-report", cwd=tmp_path)
    assert "INFO corpusforge.runner" in done.stderr
    usage = cli("--help", cwd=tmp_path).stdout
    assert "exit status: 0 done; 1 the build or a model failed; 2 bad input" in usage
    assert cli("run", str(recipe), "--log-level", "loud", cwd=tmp_path).returncode == 2  # argparse's own error


# ------------------------------------------------------------------------------------------------ bounded input
def one_line_error(done: subprocess.CompletedProcess, status: int) -> str:
    """The error a user sees: exit ``status``, one line on stderr, no traceback."""
    assert done.returncode == status, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr[-3000:]
    return done.stderr


def test_alias_bomb_is_refused_with_exit_2(tmp_path):
    (tmp_path / "bomb.yaml").write_text(alias_bomb())
    started = time.monotonic()
    done = cli("validate", "bomb.yaml", cwd=tmp_path)
    assert time.monotonic() - started < 10  # the interpreter's start included; the refusal itself is instant
    assert "bomb.yaml:" in one_line_error(done, 2) and "alias bomb" in done.stderr


def test_bad_set_overrides_are_one_line_errors_and_run_nothing(tmp_path, recipe):
    assert "--set =x: no key before '='" in one_line_error(
        cli("validate", str(recipe), "--set", "=x", cwd=tmp_path), 2
    )
    payload = 'k=!!python/object/apply:os.system ["touch pwned"]'
    done = cli("run", str(recipe), "--set", payload, cwd=tmp_path)
    assert (
        f"--set {payload}" in one_line_error(done, 2)
        and "'!!python/object/apply:os.system' is not allowed" in done.stderr
    )
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "out").exists()


def test_plugin_that_exits_or_is_interrupted_at_import(tmp_path, recipe):
    data = yaml.safe_load(recipe.read_text())
    for name, body, status in [("quits", "raise SystemExit(0)\n", 2), ("ctrl_c", "raise KeyboardInterrupt\n", 130)]:
        (tmp_path / f"{name}.py").write_text(body)
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({**data, "plugins": [f"{name}.py"]}))
        done = cli("run", f"{name}.yaml", cwd=tmp_path)
        assert done.returncode == status, done.stderr
        assert "Traceback" not in done.stderr
    message = one_line_error(cli("run", "quits.yaml", cwd=tmp_path), 2)
    assert "plugin file 'quits.py' failed to import" in message and "sys.exit(0)" in message
    assert not (tmp_path / "out").exists()


def test_truncated_gzip_names_the_file_and_the_task_log(tmp_path):
    rows = b"".join(b'{"text": "document number %d"}\n' % i for i in range(2000))
    whole = gzip.compress(rows)
    (tmp_path / "in.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(make_recipe(tmp_path, str(tmp_path / "in.jsonl.gz"))))
    done = cli("run", "r.yaml", "--no-report", cwd=tmp_path)
    assert done.returncode == 1 and "build failed" in done.stderr, done.stderr
    assert f"{tmp_path / 'in.jsonl.gz'}: the file is truncated" in done.stderr
    assert "task_00000.log" in done.stderr


@pytest.fixture()
def tmpfs(tmp_path):
    """``mount(name, options)``: a tmpfs at ``tmp_path / name`` (unmounted afterwards); skips where mounting is not
    permitted (not root, no CAP_SYS_ADMIN)."""
    mounted = []

    def mount(name: str, options: str):
        path = tmp_path / name
        path.mkdir()
        try:
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
        except FileNotFoundError:
            pytest.skip("no `mount` command")
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_read_only_output_folder_is_one_line_with_exit_2(tmp_path, recipe, tmpfs):
    ro = tmpfs("ro", "ro,size=1m")
    done = cli("run", str(recipe), "-o", str(ro / "out"), cwd=tmp_path)
    assert f"{ro / 'out'}: read-only file system" in one_line_error(done, 2)
    # a finished build on a file system remounted read-only: finalize and a rerun say the same
    rw = tmpfs("rw", "size=2m")
    assert cli("run", str(recipe), "-q", "--no-report", "-o", str(rw / "out"), cwd=tmp_path).returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(rw)], check=True)
    for args in (["finalize", str(rw / "out")], ["run", str(recipe), "-o", str(rw / "out"), "--overwrite"]):
        message = one_line_error(cli(*args, cwd=tmp_path), 2)
        assert str(rw / "out") in message and "read-only file system" in message


def test_disk_full_in_finalize_is_one_line_with_exit_1_and_keeps_the_build(tmp_path, recipe, tmpfs):
    disk = tmpfs("small", "size=2m")
    out = disk / "out"
    assert cli("run", str(recipe), "-q", "--no-report", "-o", str(out), cwd=tmp_path).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert {"state.json", "manifest.json", "dataset_info.json"} <= set(before)
    failed = 0
    for pages_free in range(8):  # the disk full at each point finalize writes, until it has room enough
        (disk / "fill").unlink(missing_ok=True)
        stat = os.statvfs(disk)
        (disk / "fill").write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - pages_free * 4096))
        done = cli("finalize", str(out), "--no-report", cwd=tmp_path)
        if done.returncode == 0:
            break
        failed += 1
        assert f"no space left on device writing {out}" in one_line_error(done, 1)
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # whole, nothing left over
        assert json.loads((out / "state.json").read_bytes()) and json.loads((out / "manifest.json").read_bytes())
    assert failed >= 1 and done.returncode == 0, done.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_a_step_that_calls_sys_exit_fails_its_task_and_the_run_ends(tmp_path, workers):
    """sys.exit(0) in a step ended a one-worker run with exit 0 and nothing built, and left a two-worker run waiting
    forever on a pool worker that had exited."""
    (tmp_path / "quits.py").write_text(
        "import sys\n\nimport corpusforge as cf\n\n\n@cf.filter\ndef quits(doc):\n    sys.exit(0)\n"
    )
    write_jsonl(tmp_path / "in.jsonl", [{"text": f"document number {i}"} for i in range(6)])
    recipe = make_recipe(
        tmp_path,
        str(tmp_path / "in.jsonl"),
        steps=[{"quits": {}}],
        plugins=[str(tmp_path / "quits.py")],
        executor={"tasks": 2, "workers": workers},
    )
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    done = subprocess.run(
        [sys.executable, "-m", "corpusforge.cli", "run", "r.yaml", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,  # the two-worker run used to hang here
    )
    assert done.returncode == 1, done.stderr
    assert "a step called sys.exit(0) in task" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_disk_full_while_tasks_write_is_one_line_with_exit_1(tmp_path, tmpfs, workers):
    """A disk that fills while the tasks write their shards and logs printed loguru's tracebacks (one per log line,
    even with -q) and a summary that never said the disk was full."""
    full = tmpfs("full", "size=60k")
    write_jsonl(tmp_path / "in.jsonl", [{"text": f"some document text number {i} " * 5} for i in range(400)])
    recipe = make_recipe(
        tmp_path, str(tmp_path / "in.jsonl"), steps=[{"length": {}}], executor={"tasks": 2, "workers": workers}
    )
    recipe["output"]["path"] = str(full / "out")
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    done = cli("run", "r.yaml", "-q", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: no space left on device writing {full / 'out'}", done.stderr[-2000:]
