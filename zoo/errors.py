"""The exceptions of zoo, in one place.

Two kinds matter to a caller. User errors (`USER_ERRORS`) are mistakes in
what was asked for: a missing file or dataset, an unreadable image, bad
arguments, data that cannot be used; the tools print them as one line and
exit with status 2. Work failures (`WORK_FAILURES`) are sound requests whose
work failed, a diverged training run; the tools print one line and exit with
status 1. Anything else is a bug and keeps its traceback.

Each exception derives from the built-in one a caller would catch without
knowing zoo (FileNotFoundError, ValueError, RuntimeError).
"""


class UserError(Exception):
    """A mistake in what the user asked for (as opposed to a bug): the tools
    print its message on one line and exit with status 2."""


class DataNotFoundError(FileNotFoundError):
    """No local file and no tensorflow-datasets source for a dataset."""


class WeightsNotFoundError(FileNotFoundError):
    """A checkpoint's weights file is in none of the places looked at."""


class ChecksumError(ValueError):
    """A weights file does not match the manifest's sha256 or size."""


class UnreadableImageError(ValueError):
    """An image file could not be read or decoded; the message names it."""


class NotAZooExportError(ValueError):
    """A SavedModel without the signatures zoo.export writes."""


class EvaluationError(ValueError):
    """The model and the data cannot be evaluated together (a usage error)."""


class ConfigurationError(ValueError):
    """A run cannot start as configured (e.g. its output directory holds
    another run): a user error."""


class FinetuneError(ValueError):
    """Arguments or data that cannot be fine-tuned on (a usage error)."""


class ConversionError(ValueError):
    """Images that cannot be converted to the channels a model takes."""


class PlanError(ValueError):
    """The campaign's plan file is malformed."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


# What the tools report as user errors: missing files and data, unreadable
# images, bad data for evaluation or fine-tuning, a bad campaign plan, a file
# that would be overwritten.
USER_ERRORS = (UserError, FileNotFoundError, FileExistsError, ConfigurationError,
               UnreadableImageError, NotAZooExportError, EvaluationError, FinetuneError,
               ConversionError, PlanError, ChecksumError)

# What the tools report in one line with exit status 1.
WORK_FAILURES = (TrainingDiverged,)
