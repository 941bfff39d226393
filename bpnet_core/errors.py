"""The one exception type that users see as a plain message."""


class InputError(Exception):
    """Bad user input: a config key, a file or its contents.

    The message names the file and, where one applies, the config key. The
    command line and the Snakemake rules print it alone, without a traceback,
    and exit non-zero.
    """
