"""The one exception type the command line turns into a one-line error and a non-zero exit, and its wording."""

REDACTED = "[redacted]"
_secrets: set[str] = set()


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


def keep_secret(value: str | None) -> None:
    """Remember a secret (an API key) so that `redacted` removes it from anything augir prints."""
    if value and len(value) >= 4:  # shorter "keys" (placeholders) would blank out ordinary words
        _secrets.add(value)


def redacted(text: str) -> str:
    """`text` without any secret given to `keep_secret` (a server may echo the Authorization header back)."""
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
