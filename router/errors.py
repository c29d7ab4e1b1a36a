"""The engine's error tree, written down once.

Every adapter translates its library's exceptions into one of these at its
boundary (``raise ... from exc``), so the core only ever reasons about two
families: a *permanent* error parks the job with its reason, a *transient*
one retries with backoff and parks when the retries are spent.

    EngineError
    ├── PermanentError          the same input will fail the same way again
    │   ├── ParseError          HL7 v2 that cannot be read (framing, MSH, charset)
    │   ├── UnsupportedMessageError   a message type/trigger this engine does not take
    │   ├── ValidationError     content that breaks a rule (XSD, PID≠CDA, flags, base64)
    │   ├── MappingError        a document that cannot be packaged or mapped
    │   ├── ConfigError         a configuration key that is missing or wrong
    │   └── RejectedByPeer      a peer refused for good (SMTP 5xx, AR, SOAP client fault)
    └── TransientError          trying again later may succeed
        ├── BusUnavailable      the broker or embedded store cannot take or give messages
        └── PeerUnavailable     a peer is down, slow, or answered 4xx / AE / timeout

Errors carry an optional HL7 ``messageErrorCondition`` code (table 0357 plus
the ANS extensions, e.g. 902 "Identifiant de patient inconnu") and, when the
raiser knows it, where in the message the fault lies (ERR-2), so the ACK and
ZAM builders can fill ERR without knowing where the error came from:

* 100 a required segment is missing or out of place;
* 101 a required field is missing, 102 a field's data break its type or rules
  (the default for :class:`ValidationError`), 103 a value outside its table or
  not allowed with the others (a forbidden MetaDMPMSS combination);
* 200/201 a message type or trigger the engine does not take;
* 207 "application internal error" only for our own faults (and, in a ZAM, for
  the volet's 9xx patient codes, which ride in ERR-5 as the ANS samples show).
"""

from __future__ import annotations


class EngineError(Exception):
    """Root of every error the engine raises on purpose."""

    #: HL7 table 0357 / ANS messageErrorCondition code for ERR-3.
    hl7_code: str = "207"
    hl7_text: str = "Application internal error"
    #: ERR-2, where the fault lies (ERL, written with ``^``): ``segment^sequence^field^repetition^component``,
    #: e.g. ``OBX^7^5`` for OBX-5 of the seventh OBX; "" when unknown.
    hl7_location: str = ""

    def __init__(self, message: str, *, hl7_code: str | None = None, hl7_text: str | None = None,
                 hl7_location: str | None = None):
        super().__init__(message)
        self.reason = message
        if hl7_code is not None:
            self.hl7_code = hl7_code
        if hl7_text is not None:
            self.hl7_text = hl7_text
        if hl7_location is not None:
            self.hl7_location = hl7_location


class PermanentError(EngineError):
    """The same input will fail the same way: park it with its reason."""


class ParseError(PermanentError):
    hl7_code = "100"
    hl7_text = "Segment sequence error"


class UnsupportedMessageError(PermanentError):
    hl7_code = "200"
    hl7_text = "Unsupported message type"


class ValidationError(PermanentError):
    """Content that breaks a rule: the sender's fault, never 207 (102 unless the raiser says 101 or 103)."""

    hl7_code = "102"
    hl7_text = "Data type error"

    def __init__(self, message: str, *, details: list[str] | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.details = list(details or [])


class MappingError(PermanentError):
    """A document that cannot be packaged, mapped or rendered."""


class ConfigError(PermanentError):
    """A configuration problem; the message names the key."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key = key


class RejectedByPeer(PermanentError):
    """A peer refused for good (SMTP 5xx, HL7 AR, SOAP client fault)."""

    def __init__(self, message: str, *, code: int | str | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.code = code


class TransientError(EngineError):
    """Trying again later may succeed: retry with backoff, then park."""


class BusUnavailable(TransientError):
    """The bus cannot take or give messages right now."""


class PeerUnavailable(TransientError):
    """A peer is down, too slow, or answered with a temporary refusal."""

    def __init__(self, message: str, *, code: int | str | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.code = code
