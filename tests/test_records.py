"""mcpzip's light ``@dataclass`` behaves like the standard one where mcpzip relies on it."""

from __future__ import annotations

import pytest

from mcpzip.base.records import dataclass, field


@dataclass
class Base:
    name: str
    tags: list[str] = field(default_factory=list)
    size: int = 3


@dataclass
class Child(Base):
    extra: bool = False


@dataclass(frozen=True)
class Point:
    x: int
    y: int = 0


def test_init_defaults_and_factories():
    a, b = Base("a"), Base(name="b", size=5)
    assert (a.name, a.tags, a.size) == ("a", [], 3)
    assert (b.name, b.size) == ("b", 5)
    a.tags.append("t")
    assert b.tags == [] and Base("c").tags == []  # one list per instance
    assert Base.size == 3 and not hasattr(Base, "tags")


def test_arguments_are_checked_like_a_function_call():
    with pytest.raises(TypeError, match="name"):
        Base()
    with pytest.raises(TypeError, match="bogus"):
        Base("a", bogus=1)
    with pytest.raises(TypeError):
        Base("a", [], 1, 2)


def test_inherited_fields_come_first():
    c = Child("c", extra=True)
    assert (c.name, c.tags, c.size, c.extra) == ("c", [], 3, True)
    assert repr(c) == "Child(name='c', tags=[], size=3, extra=True)"


def test_equality_and_hashing():
    assert Base("a") == Base("a") and Base("a") != Base("b")
    assert Base("a") != Child("a")
    with pytest.raises(TypeError):
        hash(Base("a"))
    assert Point(1, 2) == Point(1, 2) and len({Point(1, 2), Point(1, 2), Point(2)}) == 2


def test_frozen_refuses_assignment():
    p = Point(1)
    with pytest.raises(AttributeError):
        p.x = 2
    with pytest.raises(AttributeError):
        del p.y
    assert p == Point(1, 0)


def test_a_default_before_a_required_field_is_an_error():
    with pytest.raises(TypeError, match="follows default"):

        @dataclass
        class Bad:
            a: int = 1
            b: int  # type: ignore[misc]



def test_the_first_instance_is_built_like_every_later_one():
    # __init__ is compiled when the class is first instantiated (start-up):
    # a first call with bad arguments fails as a function call would, and
    # the class works the same before and after.
    @dataclass(frozen=True)
    class Point:
        x: int
        tags: list = field(default_factory=list)

    with pytest.raises(TypeError, match="missing 1 required positional argument: 'x'"):
        Point()
    first, second = Point(1), Point(x=1)
    assert first == second and first.tags == [] and first.tags is not second.tags
    assert Point.__init__.__qualname__.endswith("Point.__init__")
    with pytest.raises(TypeError, match="takes from 2 to 3 positional arguments but 4 were given"):
        Point(1, [], 3)
