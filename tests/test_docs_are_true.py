import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_read_from_the_environment_is_in_the_readme_table():
    sources = [ROOT / "portal" / "settings.py", ROOT / "Procfile", ROOT / "Makefile"]
    names = set()
    for source in sources:
        names |= set(re.findall(r'env_[a-z]+\("([A-Z][A-Z0-9_]+)"', source.read_text()))
        names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+):-", source.read_text()))
    readme = (ROOT / "README.md").read_text()
    missing = sorted(name for name in names if f"`{name}`" not in readme)
    assert names, "no settings found: the pattern no longer matches settings.py"
    assert missing == []


def test_the_readme_shows_the_two_commands_and_ci_calls_the_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
