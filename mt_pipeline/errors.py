"""The one exception the pipeline raises for anything a user can fix."""

from nmt_common.files import InputFileError
from nmt_common.records import RecordFile


class PipelineError(Exception):
    """Bad input, missing file, failed download, checksum mismatch...

    The message is meant for the user as it is (it names the file, and the line where
    relevant); the command-line interface prints it without a traceback and exits with 2.
    """


class PipelineRecord(RecordFile):
    """A result file of the pipeline (one frozen dataclass): a file that is not its schema is a PipelineError."""

    @classmethod
    def input_error(cls, error: InputFileError) -> Exception:
        return PipelineError(str(error))
