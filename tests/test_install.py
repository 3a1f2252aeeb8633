"""The installation is the tested one: constraints.txt, setup.cfg's ranges and pip agree."""

import configparser
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)\s*$")


def pinned_versions() -> dict:
    """constraints.txt as {canonical name: Version}; every non-comment line is a pin."""
    pins = {}
    for number, line in enumerate((ROOT / "constraints.txt").read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"constraints.txt line {number} is not 'name==version': {line!r}"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"constraints.txt pins {name} twice"
        pins[name] = Version(match.group(2))
    return pins


def declared_requirements() -> dict:
    """setup.cfg's install_requires and every extra: {"install_requires" | extra: [Requirement]}."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    groups = {"install_requires": parser["options"]["install_requires"]}
    groups.update(parser["options.extras_require"])
    return {
        group: [Requirement(line) for line in text.splitlines() if line.strip()]
        for group, text in groups.items()
    }


def test_pip_check_finds_no_broken_requirements():
    result = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No broken requirements found" in result.stdout


def test_installed_versions_are_the_pinned_ones():
    pins = pinned_versions()
    assert len(pins) > 50  # the whole environment, not only the direct dependencies
    wrong = {}
    for name, version in pins.items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = f"pinned {version}, installed {installed}"
    assert not wrong, (
        f"not the tested environment: {wrong}; reinstall with "
        "pip install -c constraints.txt -e '.[dev]' (or regenerate with tools/lock.sh)"
    )


def test_setup_cfg_ranges_admit_the_pinned_versions_and_have_upper_bounds():
    pins = pinned_versions()
    for group, requirements in declared_requirements().items():
        for requirement in requirements:
            name = canonicalize_name(requirement.name)
            bounds = [spec for spec in requirement.specifier if spec.operator in ("<", "<=")]
            assert bounds, f"setup.cfg [{group}] {requirement} has no upper bound"
            if group == "gpu":  # the CUDA wheels are not part of the CPU test environment
                continue
            assert name in pins, f"setup.cfg [{group}] {requirement.name} is not in constraints.txt"
            assert requirement.specifier.contains(pins[name], prereleases=True), (
                f"setup.cfg [{group}] {requirement} excludes the tested {name}=={pins[name]}"
            )


def test_the_tested_majors_are_the_declared_ones():
    pins = pinned_versions()
    assert pins["tensorflow"].release[:2] == (2, 21)
    assert pins["keras"].major == 3 and pins["numpy"].major == 2
    dev = {canonicalize_name(requirement.name) for requirement in declared_requirements()["dev"]}
    assert {"hypothesis", "pytest", "pytest-xdist"} <= dev


def test_constraints_say_how_and_where_they_were_made():
    header = (ROOT / "constraints.txt").read_text().splitlines()[:3]
    assert any("tools/lock.sh" in line for line in header)
    assert any("Linux x86_64, CPython 3.11" in line for line in header)
    assert (ROOT / "tools" / "lock.sh").stat().st_mode & 0o111, "tools/lock.sh is not executable"


def test_license_is_the_apache_license_setup_cfg_declares():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    assert parser["metadata"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text) > 10_000
