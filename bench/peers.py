"""What is compared: the ratio rows (twofa's case ÷ a peer's) and the goals set on some of them."""

from __future__ import annotations

from dataclasses import dataclass

from figures import LE, TIMES


@dataclass(frozen=True)
class Pair:
    """A ratio row: the twofa case divided by the peer case, both in ns per operation."""

    twofa: str
    peer: str

    @property
    def workload(self) -> str:
        """The workload of the twofa case (`totp`, `webauthn`)."""
        return self.twofa.split("/")[0]


@dataclass(frozen=True)
class Goal:
    """A target for the median ratio of one of the PAIRS: at most `limit`, or below it if `strict`."""

    label: str
    pair: Pair
    limit: float
    strict: bool = False
    aim: bool = False

    def met(self, ratio: float) -> bool:
        """Whether `ratio` meets the goal."""
        return ratio < self.limit if self.strict else ratio <= self.limit

    @property
    def bound(self) -> str:
        """The goal as text, e.g. "<= 0.5x" (with the proper signs)."""
        return f"{'<' if self.strict else LE} {self.limit:g}{TIMES}"


def cross(workload: str, subjects: list[str], variants: list[str], peers: list[str]) -> list[Pair]:
    """Every `workload/subject/variant` divided by every `workload/peer`."""
    return [
        Pair(f"{workload}/{subject}/{variant}", f"{workload}/{peer}")
        for subject in subjects
        for variant in variants
        for peer in peers
    ]


BOTH = ["memory", "sqlite"]
RUST = ["native", "c", "wasmtime"]
PAIRS = [
    *cross("totp", ["python"], BOTH, ["pyotp"]),
    *cross("totp", ["node-koffi"], BOTH, ["otplib"]),
    *cross("totp", ["node-jco"], ["memory"], ["otplib"]),
    *cross("totp", RUST, BOTH, ["totp-rs", "floor-hmac-sha1x3"]),
    Pair("totp/wasmtime/memory", "totp/native/memory"),
    *cross("webauthn", ["python"], BOTH, ["py_webauthn"]),
    *cross("webauthn", ["node-koffi"], BOTH, ["simplewebauthn"]),
    *cross("webauthn", ["node-jco"], ["memory"], ["simplewebauthn"]),
    *cross("webauthn", RUST, BOTH, ["webauthn-rs-core"]),
    *cross("webauthn", ["native"], ["memory"], ["floor-ring-p256", "floor-p256"]),
]
GOALS = [
    Goal("Python · TOTP", Pair("totp/python/memory", "totp/pyotp"), 0.5),
    Goal("Python · WebAuthn", Pair("webauthn/python/memory", "webauthn/py_webauthn"), 1, strict=True),
    Goal("Node · TOTP", Pair("totp/node-koffi/memory", "totp/otplib"), 0.2),
    Goal("Node · WebAuthn", Pair("webauthn/node-koffi/memory", "webauthn/simplewebauthn"), 1, strict=True),
    Goal("Rust · TOTP", Pair("totp/native/memory", "totp/floor-hmac-sha1x3"), 10, aim=True),
    Goal("Rust · WebAuthn", Pair("webauthn/native/memory", "webauthn/webauthn-rs-core"), 1, strict=True),
    Goal("WASI · TOTP", Pair("totp/wasmtime/memory", "totp/native/memory"), 3),
]
WORKLOAD_TITLES = {"totp": "TOTP", "webauthn": "WebAuthn"}


def short(case: str) -> str:
    """A case id without its workload."""
    return case.split("/", 1)[1]
