"""The one exception type the command line turns into a one-line error and a non-zero exit."""


class AugirError(Exception):
    """A problem with the user's input: bad file, bad parameter, unreachable source."""
