"""Bundles libvolley.so into the package. Everything else is in
pyproject.toml.

Which library: VOLLEY_LIB if set (a development install against a build
you made); else, in the source tree, one built here and now from these
sources by scripts/prebuilt.sh (linux-x64, glibc 2.28 floor, stripped),
never a stale copy. The wheel is tagged py3-none-manylinux_2_28_x86_64: the
binding is ctypes, so nothing in it depends on the CPython ABI. Build
files go to a temporary directory, so `pip wheel` leaves the tree clean."""

import os
import subprocess
import tempfile
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PLATFORM = "manylinux_2_28_x86_64"


def library() -> Path:
    env = os.environ.get("VOLLEY_LIB")
    if env:
        return Path(env)
    script = ROOT / "scripts" / "prebuilt.sh"
    if not script.exists():
        raise SystemExit("volley: no libvolley.so: set VOLLEY_LIB, or build from the source tree (scripts/prebuilt.sh)")
    subprocess.run([str(script)], cwd=ROOT, check=True)
    return ROOT / "target" / "prebuilt" / "libvolley.so"


class BuildWithLibrary(build_py):
    def run(self) -> None:
        super().run()
        dst = Path(self.build_lib) / "volley" / "libvolley.so"
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(library().read_bytes())


class Wheel(bdist_wheel):
    """py3-none-<glibc floor>: any CPython 3.9+, this platform."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        return "py3", "none", PLATFORM


class BinaryDistribution(Distribution):
    """The wheel holds a native library."""

    def has_ext_modules(self) -> bool:
        return True


scratch = tempfile.mkdtemp(prefix="volley-build-")
setup(
    cmdclass={"build_py": BuildWithLibrary, "bdist_wheel": Wheel},
    distclass=BinaryDistribution,
    options={"egg_info": {"egg_base": scratch}, "build": {"build_base": scratch}},
)
