"""Every installer gives the whole protocol, and the stages above can make what each one
declares: its tool's image, its kind of native environment, its Dockerfile and install script,
and a build arg for each lock file its image reads from the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiomatrix.image import build as imagebuild
from audiomatrix.lock.installers import INSTALLERS, Installer
from audiomatrix.smoke import runner as smoke

ROOT = Path(__file__).resolve().parents[1]
PLATFORMS = ("x86_64-manylinux_2_36", "aarch64-apple-darwin", "x86_64-pc-windows-msvc")


def protocol_members() -> set[str]:
    declared = {name for name in vars(Installer) if not name.startswith("_")}
    return declared | set(Installer.__annotations__)


@pytest.mark.parametrize("name", sorted(INSTALLERS))
def test_every_installer_gives_the_whole_protocol(name: str) -> None:
    found = INSTALLERS[name]
    assert {"plan_for", "locker", "lock_files", "IMAGE", "NATIVE"} <= protocol_members()
    assert [m for m in sorted(protocol_members()) if not hasattr(found, m)] == []


@pytest.mark.parametrize("name", sorted(INSTALLERS))
def test_the_stages_can_make_what_an_installer_declares(name: str) -> None:
    found = INSTALLERS[name]
    steps = found.IMAGE
    assert steps.tool in imagebuild.TOOL_IMAGES
    assert found.NATIVE.environment in smoke.ENVIRONMENTS
    assert (ROOT / steps.dockerfile).is_file() and (ROOT / steps.install_script).is_file()
    dockerfile = (ROOT / steps.dockerfile).read_text()
    assert f"ARG {steps.tool_arg}" in dockerfile
    for platform in PLATFORMS:
        names = found.lock_files(platform)
        args = steps.lock_build_args("cell", names)
        assert all(f"ARG {arg}" in dockerfile for arg in args)
        if steps.prepared_by_host:
            assert args == {}
        else:
            assert list(args) == list(steps.lock_args)
            assert list(args.values()) == [f"environments/cell/{n}" for n in names]
