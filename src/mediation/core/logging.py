"""No personal data in logs.

Log files are copied, shipped and kept far longer than the data they mention, and are read by
people who have no need to see a party's identity number or phone (个人信息保护法 Art. 51: access
control and de-identification; 民法典 Art. 1034). Rather than trusting every `log.info(...)`
call site, each record is redacted once, when it is created: the message is formatted with its
arguments and passed through `redact_text`, and so is the exception text. Handlers then only ever
see the redacted strings.

`RedactingFilter` does the same for handlers fed by records this process did not create through
the factory (records rebuilt with `logging.makeLogRecord`, or handlers configured by uvicorn).

Not covered: attributes added through `extra=` (set after the factory runs) and formatters that
re-format `record.exc_info` themselves instead of using `record.exc_text`.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from mediation.core.pii import redact_text

_MARKER = "_mediation_pii_redaction"
_install_lock = threading.Lock()


def _message(record: logging.LogRecord) -> str:
    """The record's message, formatted and redacted, without ever raising.

    A message that is not a string (`log.info(some_dict)`) becomes its redacted text: keeping the
    object would let a handler str() it, and any personal data inside, later.
    """
    try:
        return redact_text(record.getMessage())
    except Exception:
        # Arguments that do not match the format: logging would report the error later, printing
        # the raw arguments to stderr. Keep everything, redacted, in the message instead.
        try:
            return redact_text(f"{record.msg!s} (unformatted arguments: {record.args!r})")
        except Exception:
            return f"<unprintable log message of type {type(record.msg).__name__}>"


def redact_record(record: logging.LogRecord) -> None:
    """Replace the record's message, exception and stack text with redacted strings, in place."""
    record.msg = _message(record)
    record.args = ()
    try:
        if record.exc_text:
            # A formatter elsewhere may already have cached the raw text.
            record.exc_text = redact_text(record.exc_text)
        elif record.exc_info:
            # Cached on the record, Formatter.format uses it and never re-formats the exception.
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
    except Exception:
        record.exc_text = "<exception text could not be formatted>"
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)


def install_pii_redaction() -> None:
    """Make every LogRecord created from now on redact itself. Idempotent."""
    with _install_lock:
        previous = logging.getLogRecordFactory()
        if getattr(previous, _MARKER, False):
            return

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            try:
                redact_record(record)
            except Exception:  # a logging call must never fail because of redaction
                record.msg, record.args = "<log message dropped: redaction failed>", ()
            return record

        setattr(factory, _MARKER, True)
        logging.setLogRecordFactory(factory)


class RedactingFilter(logging.Filter):
    """Redacts records passing through a handler; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            redact_record(record)
        except Exception:
            record.msg, record.args = "<log message dropped: redaction failed>", ()
        return True


class TimestampedFormatter(logging.Formatter):
    """`%(asctime)s` in ISO 8601, to the millisecond, with the UTC offset of the process's zone
    (2026-06-01T09:30:05.123+08:00): a line read from a file or `docker logs` is related to a case's
    timeline, whichever zone the host runs in, without logging's comma before the milliseconds."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).astimezone().isoformat(timespec="milliseconds")
