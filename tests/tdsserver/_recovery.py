"""Session recovery (MS-TDS FeatureExt 0x01), opt-in: what lets ODBC 18 and mssql-python
reconnect an idle broken connection by themselves (ConnectRetryCount) against SQL Server.

A first login asks for the feature with empty data; the server acknowledges it in a
FEATUREEXTACK token. A recovery login carries the session's initial and current state
(database, collation, language, state options); the server restores database and language.
SESSIONSTATE tokens tell the client when the session stops (or starts again) being
recoverable: here, while it has temp tables, as SQL Server does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

FEATURE_SESSION_RECOVERY = 0x01
TEMP_TABLES_STATE = 0x80  # our own state slot: the client stores it opaquely


@dataclass
class RecoveryState:
    database: str = ""
    language: str = ""


def _state(data: bytes, pos: int) -> tuple[RecoveryState, int]:
    """One SessionRecoveryData block: length, database, collation, language, options."""
    (length,) = struct.unpack_from("<I", data, pos)
    end = pos + 4 + length
    pos += 4
    state = RecoveryState()
    if pos < end:
        chars = data[pos]
        state.database = data[pos + 1 : pos + 1 + 2 * chars].decode("utf-16-le")
        pos += 1 + 2 * chars
    if pos < end:
        pos += 1 + data[pos]  # collation
    if pos < end:
        chars = data[pos]
        state.language = data[pos + 1 : pos + 1 + 2 * chars].decode("utf-16-le")
    return state, end


def parse_recovery(data: bytes) -> RecoveryState | None:
    """The state to restore (current over initial), or None for a first login."""
    if not data:
        return None
    initial, pos = _state(data, 0)
    current = initial
    if pos < len(data):
        current, _ = _state(data, pos)
    return RecoveryState(current.database or initial.database, current.language or initial.language)


def feature_ext_ack() -> bytes:
    """FEATUREEXTACK: session recovery acknowledged (no state options), then the terminator."""
    return b"\xae" + struct.pack("<BI", FEATURE_SESSION_RECOVERY, 0) + b"\xff"


def session_state(seqno: int, recoverable: bool) -> bytes:
    """SESSIONSTATE: our temp-tables slot, recoverable or not (must precede the final DONE)."""
    body = struct.pack("<IB", seqno, 1 if recoverable else 0)
    body += bytes([TEMP_TABLES_STATE, 1, 0 if recoverable else 1])
    return b"\xe4" + struct.pack("<I", len(body)) + body
