"""Domain errors. Each carries a one-line message that names the fix; the CLI prints it and exits 1."""


class RagcdsError(Exception):
    """An expected failure with a message that tells the user what to do next."""


class InputPDFError(RagcdsError):
    """The PDF is missing, not a PDF, encrypted, corrupt or has no text layer."""


class IndexNotFound(RagcdsError):
    """No built index where one was expected."""


class StaleIndex(RagcdsError):
    """The index was built with settings (embedder, format version) that do not match this install."""


class CorruptIndex(RagcdsError):
    """Index files are missing or do not agree with the manifest."""


class EmptyQuestion(RagcdsError):
    """A question was empty or whitespace only."""


class ModelNotFound(RagcdsError):
    """A model reference does not point at a usable local model."""


class BackendUnavailable(RagcdsError):
    """A generator backend cannot run here (missing package, unreachable endpoint)."""


class BadQuestionFile(RagcdsError):
    """A questions file has a malformed line."""


class GateFailed(RagcdsError):
    """A validation gate blocked an index version from going live."""


class BadVersionId(RagcdsError):
    """A version id that does not name a version folder inside this index (a path, '..', a typo)."""


class AuditLogError(RagcdsError):
    """The audit log (RAGCDS_HOME/logs.db) cannot be opened or written."""


class SectionNotFound(RagcdsError):
    """No section of the index carries the requested number."""
