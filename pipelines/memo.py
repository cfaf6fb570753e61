"""Memos bounded in bytes, for functions of strings that pages choose.

``functools.lru_cache`` bounds a memo by its number of entries, not by their size: a hostile
site whose pages carry thousands of distinct megabyte-long class names or hosts would have a
worker keep 65,536 of them. A :class:`BoundedMemo` counts the characters of the keys it holds,
plus ENTRY_CHARS for each entry (millions of tiny keys cost hundreds of bytes each: a budget in
key characters alone let one hold ~1 GB), and starts afresh past its budget. A hit is one dict
look-up (``memo[key]``, in C); only a miss runs Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: What an entry costs besides its key's characters, in characters (~ a dict slot, the key
#: and value objects): 8M characters hold at most ~130,000 entries, tens of MB.
ENTRY_CHARS = 64


class BoundedMemo(dict):  # type: ignore[type-arg]
    """``fn``'s results by argument (a tuple of them for several), cleared whenever the keys
    held (each *entry_chars* more) would pass ``max_chars`` characters.

    >>> upper = BoundedMemo(str.upper, max_chars=8, entry_chars=0)
    >>> upper["abc"], upper("abcde"), len(upper)
    ('ABC', 'ABCDE', 2)
    >>> upper["xyz"], len(upper)  # 3 more characters would make 11: started afresh
    ('XYZ', 1)
    >>> pair = BoundedMemo(lambda a, b: a + b, max_chars=150)
    >>> pair["a", "b"], pair("c", "d"), pair("e", "f"), len(pair)  # 66 each: the third clears
    ('ab', 'cd', 'ef', 1)
    """

    def __init__(
        self, fn: Callable[..., Any], max_chars: int, entry_chars: int = ENTRY_CHARS
    ) -> None:
        super().__init__()
        self.fn = fn
        self.max_chars = max_chars
        self.entry_chars = entry_chars
        self.chars = 0

    def __missing__(self, key: Any) -> Any:
        if type(key) is str:  # the most frequent keys first
            value = self.fn(key)
            size = len(key) + self.entry_chars
        elif type(key) is tuple:
            value = self.fn(*key)
            size = sum([len(k) for k in key if type(k) is str]) + self.entry_chars  # a list: faster
        else:
            value = self.fn(key)
            size = 8 + self.entry_chars
        chars = self.chars + size
        if chars > self.max_chars:
            self.clear()
            if size > self.max_chars:
                return value  # too big to hold
            chars = size
        self[key] = value
        self.chars = chars
        return value

    def __call__(self, *args: Any) -> Any:
        return self[args if len(args) != 1 else args[0]]

    def clear(self) -> None:
        super().clear()
        self.chars = 0

    cache_clear = clear  # as lru_cache names it
