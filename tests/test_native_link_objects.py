"""A page's ``Link`` objects made by the native core (native/src/link_objects.rs,
pipelines/native.py ``link_objects``) are those Python makes (``list(map(Link, *columns))``,
each empty rel a list of its own): equal, of the type, each field the same object, on every
page kept in the repository; input that is not a Link's columns is refused and Python makes
them; a ``Link`` whose ``__init__`` may do more is left to Python.
"""

from __future__ import annotations

import gc
import logging
import sys

import pytest
from native_checks import built, no_core, no_fallback, repository_pages  # noqa: F401 (no_fallback: autouse)

from pipelines import native
from pipelines.extract import LINK_FIELDS, Link, LinkRows, PageLinks, extract_page, own_rels

_REL = LINK_FIELDS.index("rel")


@pytest.fixture(scope="module")
def core():
    """The built core; without cargo, None (the Python path)."""
    return built(native.core())


def _python_rows(columns) -> list[Link]:
    columns = list(columns)
    columns[_REL] = own_rels(columns[_REL])
    return list(map(Link, *columns))


def test_every_page(core):
    """On every page kept in the repository the core's objects are Python's, field by field
    (the very objects but the rel lists, each its own)."""
    if core is None:
        no_core()
        assert extract_page(b"<a href=/x>x</a>", "http://s.test/").links[0].target_url
        return
    made = 0
    for url, html in repository_pages():
        links = extract_page(html, url).links
        assert isinstance(links, LinkRows)
        got = native.link_objects(links.columns)
        assert got is not None, "the core did not answer"
        want = _python_rows(links.columns)
        assert got == want
        for a, b in zip(got, want, strict=True):
            assert type(a) is Link
            for j, name in enumerate(LINK_FIELDS):
                if j != _REL:
                    assert getattr(a, name) is getattr(b, name), name
        rels = [link.rel for link in got]
        assert len({id(rel) for rel in rels}) == len(rels), "a rel list shared between rows"
        made += len(got)
    assert made > 10_000


def test_rows_take_them(core, monkeypatch):
    """``LinkRows.rows`` takes the core's objects (one call a page), and Python's without."""
    if core is None:
        return no_core()
    calls = []
    real = native.link_objects
    monkeypatch.setattr(native, "link_objects", lambda c: calls.append(1) or real(c))
    links = extract_page(b"<a href=/x>x</a><a href=/y rel=ugc>y</a>", "http://s.test/").links
    assert [k.target_url for k in links] == ["http://s.test/x", "http://s.test/y"]
    assert calls == [1]
    monkeypatch.setattr(native, "link_objects", lambda c: None)
    again = LinkRows(links.columns)
    assert again.rows() == links.rows() and again.rows()[0].rel is not links.rows()[0].rel


def test_refused(core, monkeypatch, caplog):
    """Columns of unequal length, a slot of another class or a column that is no list: the
    core refuses (logged), and the rows are Python's."""
    if core is None:
        return no_core()
    slots = native._link_slots()
    columns = tuple([x] for x in ("u", "a", None, [], False, False, False, False, "a",
                                  "content", 0, None, None))  # fmt: skip
    assert native.link_objects(columns) == [Link(*(c[0] for c in columns))]
    short = (*columns[:-1], [])
    with pytest.raises(ValueError):
        core.link_objects(Link, slots, short, _REL)
    with pytest.raises(TypeError):
        core.link_objects(Link, (*slots[:-1], PageLinks.__dict__["title"]), columns, _REL)
    with pytest.raises(TypeError):
        core.link_objects(Link, slots, (*columns[:-1], (None,)), _REL)
    monkeypatch.undo()  # the real _failed: logged, Python's answer
    monkeypatch.setattr(native, "_logged_failures", set())
    with caplog.at_level(logging.ERROR):
        assert native.link_objects(short) is None
    assert "link objects" in caplog.text
    assert LinkRows(columns).rows() == [Link(*(c[0] for c in columns))]


def test_other_init_is_python(core, monkeypatch):
    """A ``Link`` with a ``__post_init__`` is not made by the core."""
    if core is None:
        return no_core()
    monkeypatch.setattr(Link, "__post_init__", lambda self: None, raising=False)
    try:
        assert native.link_objects(([], [], [], [], [], [], [], [], [], [], [], [], [])) is None
    finally:
        monkeypatch.undo()
    assert native._link_slots() is not None


def test_false_rels_are_own_lists(core):
    """Each false rel (the shared empty list, None, an empty tuple) becomes a list of its own,
    as ``own_rels`` makes it; a true one is the very object."""
    if core is None:
        return no_core()
    shared, kept = [], ["ugc"]
    rels = [shared, None, (), shared, kept]
    n = len(rels)
    columns = (["u"] * n, ["a"] * n, [None] * n, rels, *([[False]] * 4), ["a"] * n,
               ["content"] * n, list(range(n)), [None] * n, [None] * n)  # fmt: skip
    columns = tuple(list(c) * n if len(c) == 1 else c for c in columns)
    got = native.link_objects(columns)
    assert got == _python_rows(columns)
    assert [link.rel for link in got] == [[], [], [], [], ["ugc"]]
    assert len({id(link.rel) for link in got[:4]} | {id(shared)}) == 5
    assert got[4].rel is kept


def test_each_value_held_once_per_object(core):
    """The slots are stored with one new reference each (the objects hold their values and
    give them back when freed: no leak, no early free), and read back through the class's
    own descriptors."""
    if core is None:
        return no_core()
    values = [object() for _ in LINK_FIELDS]
    values[_REL] = ["nofollow"]
    columns = tuple([value] * 50 for value in values)
    before = [sys.getrefcount(value) for value in values]
    got = native.link_objects(columns)
    assert got is not None and len(got) == 50
    after = [sys.getrefcount(value) for value in values]  # (as read before: no zip's tuple)
    assert [a - b for a, b in zip(after, before, strict=True)] == [50] * len(values)
    for j, name in enumerate(LINK_FIELDS):  # (no loop variable left holding a value)
        assert all(getattr(link, name) is values[j] for link in got), name
    got[0].anchor_text = "changed"  # the slot is the descriptor's: set and read as one
    assert got[0].anchor_text == "changed" and got[1].anchor_text is values[1]
    del got
    gc.collect()
    assert [sys.getrefcount(value) for value in values] == before


def test_an_init_of_its_own_is_python(core, monkeypatch):
    """A ``Link`` whose ``__init__`` is not the dataclass's (assigned later, here one that
    changes a value), or with a ``__setattr__`` of its own, is not made by the core: its
    objects are ``Link(...)``'s (review15-sp15 3)."""
    if core is None:
        return no_core()
    init = Link.__init__

    def shouting(self, *values):
        init(self, *values)
        object.__setattr__(self, "anchor_text", self.anchor_text.upper())

    assert native._link_slots() is not None

    def logging_setattr(self, name, value):
        object.__setattr__(self, name, value)

    for name, value in (("__init__", shouting), ("__setattr__", logging_setattr)):
        monkeypatch.setattr(Link, name, value)
        try:
            assert native._link_slots() is None, name
        finally:
            monkeypatch.undo()
        assert native._link_slots() is not None


def test_a_rel_whose_truth_test_drops_it_is_held(core):
    """The core holds each value while it reads it: a rel whose ``__bool__`` drops the
    column's reference to it is still alive in the ``Link`` made (a borrowed pointer was
    stored freed: review15-sp15 1)."""
    if core is None:
        return no_core()
    columns = [["u"], ["a"], [None], [None], *([[False]] * 4), ["a"], ["content"], [0], [None],
               [None]]  # fmt: skip
    rel = LINK_FIELDS.index("rel")

    class Dropping(list):
        def __bool__(self) -> bool:
            columns[rel][0] = None  # the column's only reference to this rel
            return True

    columns[rel][0] = Dropping(["ugc"])
    made = core.link_objects(Link, native._link_slots(), tuple(columns), native._REL)
    gc.collect()
    junk = [bytearray(b"A" * 56) for _ in range(2000)]  # would reuse freed memory
    assert type(made[0].rel) is Dropping and made[0].rel == ["ugc"] and len(junk) == 2000


def test_the_core_off_for_a_while_keeps_no_answer(core, monkeypatch):
    """``link_objects`` with the core off (LINKCRAWL_NATIVE=0) answers None and keeps no
    answer: once the core is back, it makes the objects again (a None was cached for ``Link``
    for the process's life: review15-final 4)."""
    if core is None:
        return no_core()
    native._slots_of.cache_clear()
    monkeypatch.setenv(native.NATIVE_ENV, "0")
    native.core.cache_clear()
    try:
        assert native.link_objects(([],) * len(LINK_FIELDS)) is None
        assert native._link_slots() is None
    finally:
        monkeypatch.undo()
        native.core.cache_clear()
    assert native._link_slots() is not None
    assert native.link_objects(([],) * len(LINK_FIELDS)) == []


def _one_row(anchor: str = "A") -> tuple[list, ...]:
    return (["http://a.test/"], [anchor], ["t"], [[]], [False], [False], [False], [False],
            ["a"], ["content"], [0], [None], [None])  # fmt: skip


class _Stripping:
    """A field's descriptor that passes the member's attributes on (``__objclass__``,
    ``__name__``) and strips what it is given: not a member descriptor."""

    def __init__(self, member):
        self.member = member

    def __getattr__(self, name):
        return getattr(self.member, name)

    def __get__(self, obj, owner=None):
        return self if obj is None else self.member.__get__(obj, owner)

    def __set__(self, obj, value):
        self.member.__set__(obj, value.strip())


def test_a_field_wrapped_in_another_descriptor_is_set_through_it(core, monkeypatch):
    """A field whose descriptor wraps the member (and changes values) is not stored at the
    member's offset: the core goes through the descriptor's setter, as ``Link(...)`` does
    (the offsets were taken from any descriptor named as a member: review16-e16 1)."""
    if core is None:
        return no_core()
    member = Link.__dict__["anchor_text"]
    wrapped = _Stripping(member)
    monkeypatch.setattr(Link, "anchor_text", wrapped)
    columns = _one_row("  Read more  ")
    assert LinkRows(columns).rows()[0].anchor_text == "Read more"
    slots = tuple(wrapped if f == "anchor_text" else Link.__dict__[f] for f in LINK_FIELDS)
    made = core.link_objects(Link, slots, columns, native._REL)  # the setters' path
    assert made[0].anchor_text == "Read more" and made[0].target_url == "http://a.test/"


def test_a_field_made_a_property_is_set_by_init(core, monkeypatch):
    """A field made a property after the core made objects (its answer cached) or before: the
    objects are ``Link(...)``'s (the cache missed the descriptors; before, an AttributeError
    escaped: review16-e16 3)."""
    if core is None:
        return no_core()
    member = Link.__dict__["title"]
    shouting = property(lambda s: member.__get__(s), lambda s, v: member.__set__(s, f"<{v}>"))
    assert native.link_objects(_one_row())[0].title == "t"  # cached
    monkeypatch.setattr(Link, "title", shouting)
    assert native.link_objects(_one_row()) is None
    assert LinkRows(_one_row()).rows()[0].title == "<t>"
    monkeypatch.undo()
    assert native.link_objects(_one_row())[0].title == "t"


def test_a_slot_set_while_the_row_is_made_is_not_leaked(core):
    """Python code run inside the core's row (a rel's truth test) that finds the half-made
    object and sets a slot not stored yet: the value it set is released when the core
    stores over it (it leaked one reference a row: review16-e16 2)."""
    if core is None:
        return no_core()
    sentinel = object()

    class Three:
        __slots__ = ("a", "b", "c")

    class Sneaky(list):
        def __bool__(self) -> bool:
            for o in gc.get_objects():
                if type(o) is Three and not hasattr(o, "c"):
                    o.c = sentinel
            return True

    before = sys.getrefcount(sentinel)
    slots = tuple(Three.__dict__[k] for k in "abc")
    got = core.link_objects(Three, slots, (["A"] * 3, [Sneaky()] * 3, ["C"] * 3), 1)
    assert [o.c for o in got] == ["C"] * 3
    del got
    gc.collect()
    assert sys.getrefcount(sentinel) == before
