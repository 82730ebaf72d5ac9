"""``--help`` lists our options: Locust answers it before importing the locustfile; ``locust-aiapi`` not."""

from __future__ import annotations

import subprocess
import sys

from locust_aiapi._options import OPTIONS

from ._support import ROOT, locust_env


def help_text(module: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", module, "-f", "locustfiles/chat.py", "--help"],
        cwd=ROOT, env=locust_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_python_m_locust_aiapi_help_lists_every_option_with_its_help() -> None:
    text = help_text("locust_aiapi")
    assert "--headless" in text  # Locust's own options are all there too
    for option in OPTIONS:
        assert option.flag in text, option.flag
    assert "Also add a 'TTFT' row" in text


def test_plain_locust_help_cannot_list_them_which_the_readme_says() -> None:
    # if Locust ever imports the locustfile before --help, the README's advice can be simplified
    assert "--ai-model" not in help_text("locust")
    assert "locust-aiapi -f locustfiles/chat.py --help" in (ROOT / "README.md").read_text()


def test_the_locust_aiapi_console_script_is_the_same_entry_point() -> None:
    scripts = (ROOT / "pyproject.toml").read_text().partition("[project.scripts]")[2]
    assert 'locust-aiapi = "locust_aiapi.__main__:main"' in scripts.partition("\n[")[0]
