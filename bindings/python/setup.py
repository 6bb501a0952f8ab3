"""Builds the `twofa` package: libtwofa (cargo) and the cffi extension `twofa._native`.

The cffi declarations are derived from the checked-in C header `include/twofa.h` (see
`cdef_from_header`), never copied by hand. The library is bundled next to the extension as
`libtwofa.so.0`, found through an `$ORIGIN` rpath.

Environment:
  TWOFA_LIB_DIR  use the libtwofa.so already built there instead of running cargo.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
HEADER = ROOT / "include" / "twofa.h"
SONAME = "libtwofa.so.0"

# The host callbacks implemented in Python (twofa/_host.py), with the C signatures of the
# header's callback typedefs.
PYTHON_CALLBACKS = """
extern "Python" int32_t _twofa_py_store_get(void *, const char *, twofa_store_value *);
extern "Python" int32_t _twofa_py_store_put(void *, const char *, const uint8_t *, uintptr_t, uint64_t,
                                            twofa_store_value *);
extern "Python" int32_t _twofa_py_store_delete(void *, const char *, uint64_t);
extern "Python" int32_t _twofa_py_send_mail(void *, const char *, const char *, const char *, const char *);
extern "Python" int32_t _twofa_py_now(void *, uint64_t *);
extern "Python" void _twofa_py_emit_event(void *, const char *);
"""


def cdef_from_header(header: str) -> str:
    """The header as cffi's cdef accepts it: no comments, no C++ block, no preprocessor lines
    except integer `#define`s (which become `lib.TWOFA_*` constants)."""
    text = re.sub(r"/\*.*?\*/", "", header, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"#ifdef __cplusplus.*?#endif", "", text, flags=re.S)
    kept = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and not re.fullmatch(r"#define\s+\w+\s+-?\d+", stripped):
            continue
        kept.append(line)
    return "\n".join(kept)


def build_libtwofa() -> Path:
    """Builds libtwofa in release mode (or takes TWOFA_LIB_DIR's) and returns its path."""
    prebuilt = os.environ.get("TWOFA_LIB_DIR")
    if prebuilt:
        lib = Path(prebuilt) / "libtwofa.so"
    else:
        if not (ROOT / "Cargo.toml").is_file():
            raise SystemExit(f"twofa: no Cargo workspace at {ROOT}; build from a twofa checkout or set TWOFA_LIB_DIR")
        cargo = os.environ.get("CARGO", "cargo")
        subprocess.run(
            [cargo, "build", "--release", "-p", "twofa-ffi", "--manifest-path", str(ROOT / "Cargo.toml")], check=True
        )
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        lib = (target if target.is_absolute() else ROOT / target) / "release" / "libtwofa.so"
    if not lib.is_file():
        raise SystemExit(f"twofa: {lib} not found")
    return lib


class BuildNative(build_ext):
    """Builds libtwofa, bundles it, and compiles `twofa._native` against it with cffi."""

    def build_extension(self, ext: Extension) -> None:
        import cffi

        target = Path(self.get_ext_fullpath(ext.name)).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        bundled = target.parent / SONAME
        shutil.copyfile(build_libtwofa(), bundled)

        ffi = cffi.FFI()
        ffi.cdef(cdef_from_header(HEADER.read_text()) + PYTHON_CALLBACKS)
        ffi.set_source(
            "twofa._native",
            '#include "twofa.h"',
            include_dirs=[str(HEADER.parent)],
            extra_objects=[str(bundled)],
            extra_link_args=["-Wl,-rpath,$ORIGIN"],
        )
        tmp = Path(self.build_temp).resolve()
        tmp.mkdir(parents=True, exist_ok=True)
        built = Path(ffi.compile(tmpdir=str(tmp), verbose=self.verbose))
        shutil.copyfile(built, target)


setup(ext_modules=[Extension("twofa._native", sources=[])], cmdclass={"build_ext": BuildNative})
