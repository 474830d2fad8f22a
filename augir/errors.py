"""The one exception type the command line turns into a one-line error and a non-zero exit, and its wording."""


class AugirError(Exception):
    """A problem with the user's input: bad file, bad parameter, unreachable source."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def described(error: BaseException) -> str:
    """`Type: first line`, for wrapping a library's exception into one line of ours."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
