"""README.md is the entry point: its two commands must be the ones that really run."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("```bash")
    block = lines[start + 1 : lines.index("```", start + 1)]
    return [line for line in block if line and not line.startswith("#")]


def test_readme_opens_with_the_train_and_test_commands():
    train, test = readme_commands()
    assert train.endswith("python -m pose_keras.fit")
    assert "pytest" in test


def test_ci_runs_the_readme_test_command_verbatim():
    _, test = readme_commands()
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci_lines


def test_readme_commands_install_the_tested_versions():
    train, test = readme_commands()
    assert "pip install -c constraints.txt -e . &&" in train
    assert 'pip install -c constraints.txt -e ".[dev]" &&' in test
    assert (ROOT / "constraints.txt").is_file()


def test_readme_shows_the_python_api_and_how_numbers_vary():
    text = (ROOT / "README.md").read_text()
    assert "## Python API" in text and "pose_keras.load(" in text
    assert "85.2 PCKh in 18.1 min" in text and "AMD EPYC" in text
    assert "tools/lock.sh" in text
