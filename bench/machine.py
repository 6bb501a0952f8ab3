"""The machine and the versions a report names: CPU, memory, kernel, load, and the installed
versions of every suite's peers."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from pathlib import Path

from measurements import ROOT

# Rust crates whose versions the report lists (read from Cargo.lock).
PEER_CRATES = ["totp-rs", "webauthn-rs-core", "ring", "p256", "hmac", "sha1", "wasmtime", "rusqlite"]


def read_text(path: str | Path) -> str:
    """A file's text, or "" if it cannot be read."""
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def command_output(command: list[str]) -> str:
    """The first line a command prints, or "unknown"."""
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return "unknown"
    lines = done.stdout.strip().splitlines()
    return lines[0] if done.returncode == 0 and lines else "unknown"


def machine_info() -> dict[str, str]:
    """CPU model, cores, memory and kernel (from /proc and uname)."""
    cpu = re.search(r"^model name\s*:\s*(.+)$", read_text("/proc/cpuinfo"), re.MULTILINE)
    memory = re.search(r"^MemTotal:\s*(\d+) kB", read_text("/proc/meminfo"), re.MULTILINE)
    uname = platform.uname()
    return {
        "cpu": cpu.group(1).strip() if cpu else "unknown",
        "cores": str(os.cpu_count() or "unknown"),
        "memory": f"{int(memory.group(1)) / 1024**2:.1f} GiB" if memory else "unknown",
        "kernel": f"{uname.system} {uname.release} {uname.machine}",
    }


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, as /proc/loadavg gives them."""
    return " ".join(read_text("/proc/loadavg").split()[:3]) or "unknown"


def requirement_names(path: Path) -> list[str]:
    """The distribution names of a pip requirements file."""
    names = []
    for line in read_text(path).splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.append(re.split(r"[\s=<>!~\[;]", line)[0])
    return names


# Prints, as one JSON line, Python's version and the installed version of each distribution named.
VERSIONS_SCRIPT = """
import importlib.metadata, json, sys
def version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
print(json.dumps({"Python": sys.version.split()[0], **{f"{name} (PyPI)": version(name) for name in sys.argv[1:]}}))
"""


def python_versions(python: str) -> dict[str, str]:
    """Python's version and the bench requirements' installed versions, asked of `python`."""
    names = requirement_names(ROOT / "bench" / "python" / "requirements.txt")
    found = command_output([python, "-c", VERSIONS_SCRIPT, *names])
    return dict(json.loads(found)) if found.startswith("{") else {"Python": "unknown"}


def node_versions() -> dict[str, str]:
    """Node's version and the versions installed in bench/node/node_modules."""
    found = {"Node.js": command_output(["node", "--version"])}
    package = read_text(ROOT / "bench" / "node" / "package.json")
    manifest = json.loads(package) if package else {}
    for name in sorted({**manifest.get("dependencies", {}), **manifest.get("devDependencies", {})}):
        installed = read_text(ROOT / "bench" / "node" / "node_modules" / name / "package.json")
        found[f"{name} (npm)"] = json.loads(installed)["version"] if installed else "not installed"
    return found


def rust_versions() -> dict[str, str]:
    """rustc's version and the peer crates' versions in Cargo.lock."""
    found = {"rustc": command_output(["rustc", "--version"])}
    locked = re.findall(r'^name = "([^"]+)"\nversion = "([^"]+)"', read_text(ROOT / "Cargo.lock"), re.MULTILINE)
    for crate in PEER_CRATES:
        crate_versions = [version for name, version in locked if name == crate]
        if crate_versions:
            found[f"{crate} (crate)"] = ", ".join(crate_versions)
    return found


def versions(python: str) -> dict[str, str]:
    """Every version the report lists."""
    return {**rust_versions(), **python_versions(python), **node_versions()}
