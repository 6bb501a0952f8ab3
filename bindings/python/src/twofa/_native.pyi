# The cffi extension built by setup.py from include/twofa.h (`ffi` and `lib` are cffi objects).
from typing import Any

ffi: Any
lib: Any
