import typing


def normalise_words(text: str) -> typing.List[str]:
    """Lower-case words without punctuation."""
    cleaned = "".join(c.lower() if c.isalnum() else " " for c in text)
    return cleaned.split()
