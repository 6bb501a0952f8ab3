"""twofa: two-factor authentication (authenticator apps, email codes, WebAuthn, recovery codes)
for Python backends, over libtwofa, the one Rust core every twofa surface shares.

    import twofa
    engine = twofa.Engine(config, store=twofa.MemoryStore(), mailer=send)
    setup = engine.totp_enroll_begin("alice", "alice@example.com")

`twofa.aio.Engine` is the same API as coroutines, over an async store and mailer.
"""

from ._ffi import library_version
from .engine import Admin, Clock, ConfigArg, Engine, Mailer, StepUp
from .errors import (
    Conflict,
    Expired,
    Internal,
    InvalidCode,
    InvalidInput,
    LockedOut,
    Mail,
    NotEnrolled,
    NotFound,
    Panic,
    PolicyViolation,
    RateLimited,
    Replayed,
    StepUpRequired,
    Storage,
    StoreConflict,
    TwofaError,
    UnsupportedSchema,
    WebauthnRejected,
    error_class,
    status_name,
)
from .stores import AsyncStore, MemoryStore, NativeStore, SqliteStore, Store, check_store
from .types import (
    CodeSent,
    LoginChallenge,
    LoginSuccess,
    Message,
    MethodAdded,
    MethodInfo,
    MethodKind,
    Notices,
    PendingEnrollments,
    Recommendation,
    RecoveryCodes,
    SecurityStatus,
    StepUpToken,
    TotpSetup,
    Warning,
    WebauthnRegistration,
)

#: The version of the bundled libtwofa.
LIBRARY_VERSION: str = library_version()
__version__ = "0.1.0"

__all__ = [
    "LIBRARY_VERSION",
    "Admin",
    "AsyncStore",
    "Clock",
    "CodeSent",
    "ConfigArg",
    "Conflict",
    "Engine",
    "Expired",
    "Internal",
    "InvalidCode",
    "InvalidInput",
    "LockedOut",
    "LoginChallenge",
    "LoginSuccess",
    "Mail",
    "Mailer",
    "MemoryStore",
    "Message",
    "MethodAdded",
    "MethodInfo",
    "MethodKind",
    "NativeStore",
    "NotEnrolled",
    "NotFound",
    "Notices",
    "Panic",
    "PendingEnrollments",
    "PolicyViolation",
    "RateLimited",
    "Recommendation",
    "RecoveryCodes",
    "Replayed",
    "SecurityStatus",
    "SqliteStore",
    "StepUp",
    "StepUpRequired",
    "StepUpToken",
    "Storage",
    "Store",
    "StoreConflict",
    "TotpSetup",
    "TwofaError",
    "UnsupportedSchema",
    "Warning",
    "WebauthnRegistration",
    "WebauthnRejected",
    "__version__",
    "check_store",
    "error_class",
    "status_name",
]
