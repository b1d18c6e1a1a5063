"""The command's output as a pipe sees it: --version, -v for INFO lines, --quiet for errors only, exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

import corpusforge
from conftest import make_recipe, write_jsonl


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
    assert "INFO corpusforge.build: stages done" in verbose.stderr


def test_quiet_prints_nothing_but_errors(tmp_path, recipe):
    done = cli("run", str(recipe), "--quiet", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert (tmp_path / "out" / "manifest.json").is_file()
    bad = cli("run", str(tmp_path / "missing.yaml"), "-q", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stdout == "" and "error:" in bad.stderr and "missing.yaml" in bad.stderr


def test_log_level_and_help_name_the_exit_codes(tmp_path, recipe):
    done = cli("run", str(recipe), "--log-level", "info", "--no-report", cwd=tmp_path)
    assert "INFO corpusforge.build" in done.stderr
    usage = cli("--help", cwd=tmp_path).stdout
    assert "exit status: 0 done; 1 the build or a model failed; 2 bad input" in usage
    assert cli("run", str(recipe), "--log-level", "loud", cwd=tmp_path).returncode == 2  # argparse's own error
