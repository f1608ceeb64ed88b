"""`persistor completion bash|zsh|fish`: the printed script completes persistor's commands."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.toolbox.conftest import clean_env, run

PERSISTOR = str(Path(sys.executable).parent / "persistor")


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _persistor_completion persistor"),
        ("zsh", "#compdef persistor"),
        ("fish", "complete --no-files --command persistor"),
    ],
)
def test_completion_prints_the_shell_script(shell: str, marker: str, tmp_path: Path) -> None:
    result = run([PERSISTOR, "completion", shell], tmp_path)
    assert result.code == 0, result.out
    assert marker in result.out
    assert "_PERSISTOR_COMPLETE" in result.out


def test_unknown_shell_is_a_usage_error(tmp_path: Path) -> None:
    result = run([PERSISTOR, "completion", "tcsh"], tmp_path)
    assert result.code == 2
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in result.out


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_commands_and_options(tmp_path: Path) -> None:
    script = tmp_path / "persistor.bash"
    script.write_text(run([PERSISTOR, "completion", "bash"], tmp_path).out)
    env: dict[str, Any] = clean_env(PATH=f"{Path(PERSISTOR).parent}:/usr/bin:/bin")
    probe = (
        f"source {script}; "
        "COMP_WORDS=(persistor mig); COMP_CWORD=1; _persistor_completion persistor 2>/dev/null; echo ${COMPREPLY[@]}; "
        "COMPREPLY=(); COMP_WORDS=(persistor validate --off); COMP_CWORD=2; _persistor_completion persistor 2>/dev/null; "
        "echo ${COMPREPLY[@]}"
    )
    result = run(["bash", "-c", probe], tmp_path, env)
    assert result.code == 0, result.out
    assert result.out.split("\n")[:2] == ["migrate", "--offline"]
