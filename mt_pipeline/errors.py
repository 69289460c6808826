"""The one exception the pipeline raises for anything a user can fix."""


class PipelineError(Exception):
    """Bad input, missing file, failed download, checksum mismatch...

    The message is meant for the user as it is (it names the file, and the line where
    relevant); the command-line interface prints it without a traceback and exits with 2.
    """
