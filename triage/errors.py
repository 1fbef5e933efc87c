"""Domain errors, all in one place. Each message says what was expected, what was found, how to fix."""

from __future__ import annotations


class TriageError(Exception):
    """Base of every error the project raises on purpose; its message is shown to people."""

    status_code = 400
    exit_code = 2  # the command line's exit code for it

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InterruptedByUser(TriageError):
    """Ctrl-C stopped a job after it saved what it could (e.g. a fine-tuning checkpoint)."""

    exit_code = 130  # the shell's code for a command ended by SIGINT


class InputFileError(TriageError):
    """A data file cannot be read: missing, wrong encoding, malformed row, missing column."""


class OutputFileError(TriageError):
    """An output file or directory cannot be written: a directory where a file goes, a folder
    that is a file or read-only, a failed write."""


class TaxonomyError(InputFileError):
    """A taxonomy file breaks the structure rules (empty name, duplicate path ...)."""


class LabelError(InputFileError):
    """Training labels that name no node, or name several equally well."""

    status_code = 422


class InvalidTicketError(TriageError):
    """A ticket body that cannot be accepted (empty text, too long ...)."""

    status_code = 422


class ClientIdConflictError(TriageError):
    """A ``client_id`` already stands for another appeal: the new one is not stored under it."""

    status_code = 409


class NotFoundError(TriageError):
    """A ticket, model version or file that does not exist."""

    status_code = 404


class ArtifactError(TriageError):
    """A model directory that cannot be loaded or registered as it is."""

    status_code = 409


class ModelNotReadyError(TriageError):
    """No model is loaded yet."""

    status_code = 503


class RoutingError(InputFileError):
    """A responsibility list or gazetteer that breaks its rules, or a path it cannot route."""


class PeriodFrozenError(TriageError):
    """A published period cannot be published again; it is corrected by a new revision."""

    status_code = 409


class PerformanceInputError(TriageError):
    """Ticket facts or results that cannot be scored as they are."""

    status_code = 422


class ReturnRefusedError(TriageError):
    """A return (退回) the ticket's current dispatch does not allow: the unit does not hold the
    ticket, it returned it already, or it is the hotline office that dispatches by hand."""

    status_code = 409


class HistoryError(InputFileError):
    """Past tickets (``--history``) that cannot teach routing: too few usable rows, or a single
    unit to choose."""


class InvalidSettingError(TriageError):
    """A ``TRIAGE_*`` setting (environment variable or ``.env``) whose value breaks its rule; the
    message names the variable as it was written, the rule and the value."""

    status_code = 500
