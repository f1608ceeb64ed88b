"""examples/shop, tested the way its users would: pytest, from a fresh venv with persistor installed."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path

from tests.toolbox.conftest import REPO, clean_env, databases, run


def fresh_venv(folder: Path) -> Path:
    """Make a venv with persistor installed from this repository; return its python.

    Its dependencies (psycopg, pytest, …) come from the running venv through a
    .pth line placed after the new venv's own site-packages, so nothing is
    downloaded; persistor itself is a real, non-editable install of this tree.
    """
    source = folder / "persistor-src"
    source.mkdir(parents=True)
    for name in ("src", "pyproject.toml", "README.md"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
        copy(REPO / name, source / name)
    venv = folder / "venv"
    assert run([sys.executable, "-m", "venv", "--without-pip", str(venv)], folder).code == 0
    python = venv / "bin" / "python"
    site = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], folder
    )
    (Path(site.out.strip()) / "parent_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
    installed = run([*pip, str(source)], folder, timeout=300)
    assert installed.code == 0, installed.out
    return python


def test_example_project_passes_its_own_tests(tmp_path: Path, server_url: str) -> None:
    python = fresh_venv(tmp_path)
    where = run([str(python), "-c", "import persistor; print(persistor.__file__)"], tmp_path)
    assert where.out.startswith(str(tmp_path / "venv")), where.out
    project = tmp_path / "shop"
    shutil.copytree(REPO / "examples" / "shop", project)
    result = run(
        [
            str(python),
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-rs",
            "--persistor-url",
            server_url,
        ],
        project,
        clean_env(),
    )
    assert result.code == 0, result.out
    assert "6 passed, 1 skipped" in result.out  # the dump check needs a dump
    assert databases(server_url, "persistor_") == []
