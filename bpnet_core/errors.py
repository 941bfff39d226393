"""The one exception type that users see as a plain message."""


class InputError(Exception):
    """Bad user input: a config key, a file or its contents.

    The message names the file and, where one applies, the config key. The
    command line and the Snakemake rules print it alone, without a traceback,
    and exit non-zero.
    """


def warn(message: str) -> None:
    """Tell the user about a likely mistake that does not stop the run.

    One line on standard error, ``warning: <message>``; the message names
    the file and config key, as an `InputError`'s does.
    """
    import sys

    print(f"warning: {message}", file=sys.stderr, flush=True)
