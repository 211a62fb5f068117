"""Write ``keycloak_config/password-blocklist.txt`` from zxcvbn's password frequency list.

Run once, by hand, when the list is to be rebuilt (the file is committed; nothing reads zxcvbn at
run time): ``pip install zxcvbn==4.5.0 && python scripts/make_password_blocklist.py``.

The source is the ``passwords`` list of zxcvbn-python 4.5.0 (MIT licence, Copyright (c) 2016
Daniel Wolf; the list itself comes from Dropbox's zxcvbn, also MIT): the 30,000 most common
passwords of leaked password sets, most common first. Kept: the 10,000 most common, and every
entry of 12 or more characters (the realm's minimum length refuses the shorter ones anyway, so
the long ones are the list's real work). Keycloak's ``passwordBlacklist`` policy compares the
lower-cased password with each line.
"""

from __future__ import annotations

from pathlib import Path

from zxcvbn.frequency_lists import FREQUENCY_LISTS

TARGET = Path(__file__).resolve().parents[1] / "keycloak_config" / "password-blocklist.txt"
MOST_COMMON = 10_000
MINIMUM_LENGTH = 12


def blocklist(passwords: list[str]) -> list[str]:
    """The most common passwords, then every long one, once each, lower case, in rank order."""
    chosen = [
        word.lower()
        for rank, word in enumerate(passwords)
        if rank < MOST_COMMON or len(word) >= MINIMUM_LENGTH
    ]
    return list(dict.fromkeys(word for word in chosen if word.strip() == word and word))


def main() -> None:
    words = blocklist(FREQUENCY_LISTS["passwords"])
    TARGET.write_text("\n".join(words) + "\n")
    print(f"{TARGET}: {len(words)} passwords")


if __name__ == "__main__":
    main()
