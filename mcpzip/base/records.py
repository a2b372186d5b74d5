"""``@dataclass`` and ``field`` for mcpzip's own classes, without the cost.

The standard ``dataclasses`` module imports ``inspect`` (and through it
``ast``, ``dis`` and ``tokenize``), which costs a client more start-up time
than the rest of ``mcpzip serve``'s own modules.  This module offers the
subset mcpzip uses, with the same spelling, so a class reads exactly like a
standard dataclass:

* fields are the class's annotations in order (``ClassVar`` ones excepted),
  including those of record base classes;
* a default is a plain class attribute or ``field(default=...)`` /
  ``field(default_factory=...)``;
* the generated ``__init__`` takes the fields positionally or by keyword;
  ``__repr__`` and ``__eq__`` compare and show the fields;
* ``frozen=True`` forbids assignment after ``__init__`` and makes instances
  hashable by their fields, as the standard module does.

``__post_init__``, ``fields()``, ``asdict()`` and ``replace()`` are not
provided: nothing in mcpzip needs them.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

class _Missing:
    def __repr__(self) -> str:
        return "<factory>"  # how a factory default shows in a signature


_MISSING: Any = _Missing()
_FIELDS = "__record_fields__"


class Field:
    __slots__ = ("default", "default_factory")

    def __init__(self, default: Any, default_factory: Callable[[], Any] | Any) -> None:
        self.default = default
        self.default_factory = default_factory


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] | Any = _MISSING) -> Any:
    """A field's default: a value, or a factory called for each instance."""
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return Field(default, default_factory)


def dataclass(cls: type | None = None, *, frozen: bool = False) -> Any:
    """Give *cls* ``__init__``, ``__repr__`` and ``__eq__`` built from its annotations."""

    def wrap(cls: type) -> type:
        return _process(cls, frozen)

    return wrap if cls is None else wrap(cls)


def _process(cls: type, frozen: bool) -> type:
    fields: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        fields.update(getattr(base, _FIELDS, {}))
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if isinstance(annotation, str) and annotation.replace("typing.", "").startswith("ClassVar"):
            continue
        value = cls.__dict__.get(name, _MISSING)
        spec = value if isinstance(value, Field) else Field(value, _MISSING)
        if spec.default_factory is not _MISSING or value is _MISSING:
            if name in cls.__dict__:
                delattr(cls, name)
        else:
            setattr(cls, name, spec.default)
        fields[name] = spec
    setattr(cls, _FIELDS, fields)

    names = list(fields)
    seen_default = False
    for name in names:
        has_default = fields[name].default is not _MISSING or fields[name].default_factory is not _MISSING
        if seen_default and not has_default:
            raise TypeError(f"non-default argument {name!r} follows default argument")
        seen_default = seen_default or has_default

    cls.__init__ = _compiled_on_first_use(cls, fields, frozen)  # type: ignore[misc]
    cls.__repr__ = _make_repr(names)  # type: ignore[method-assign]
    cls.__eq__ = _make_eq(names)  # type: ignore[method-assign]
    if frozen:
        cls.__setattr__ = _frozen_setattr  # type: ignore[method-assign]
        cls.__delattr__ = _frozen_delattr  # type: ignore[method-assign]
        cls.__hash__ = lambda self: hash(tuple(getattr(self, n) for n in names))  # type: ignore[method-assign]
    else:
        cls.__hash__ = None  # type: ignore[assignment]  # mutable and comparable: unhashable
    return cls


def _compiled_on_first_use(cls: type, fields: dict[str, Field], frozen: bool) -> Callable[..., None]:
    """An ``__init__`` that compiles the real one when the class is first instantiated.

    Compiling costs about 0.1 ms a class, and many classes are defined at
    start-up but first used later, if ever.  The compiled one then replaces
    this on the class; two threads that race here compile it twice, harmlessly.
    """

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init = _make_init(cls.__qualname__, fields, frozen)
        type.__setattr__(cls, "__init__", init)
        init(self, *args, **kwargs)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def _make_init(qualname: str, fields: dict[str, Field], frozen: bool) -> Callable[..., None]:
    """A real ``__init__`` (signature, argument errors and all), compiled once per class."""
    namespace: dict[str, Any] = {"_MISSING": _MISSING, "_set": object.__setattr__}
    params, body = [], []
    for name, spec in fields.items():
        if spec.default_factory is not _MISSING:
            namespace[f"_factory_{name}"] = spec.default_factory
            params.append(f"{name}=_MISSING")
            value = f"_factory_{name}() if {name} is _MISSING else {name}"
        elif spec.default is not _MISSING:
            namespace[f"_default_{name}"] = spec.default
            params.append(f"{name}=_default_{name}")
            value = name
        else:
            params.append(name)
            value = name
        body.append(f"    _set(self, {name!r}, {value})" if frozen else f"    self.{name} = {value}")
    source = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) or "    pass") + "\n"
    exec(source, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{qualname}.__init__"
    return init


def _make_repr(names: list[str]) -> Callable[[Any], str]:
    def __repr__(self: Any) -> str:
        return f"{type(self).__qualname__}({', '.join(f'{n}={getattr(self, n)!r}' for n in names)})"

    return __repr__


def _make_eq(names: list[str]) -> Callable[[Any, Any], Any]:
    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in names)

    return __eq__


class FrozenInstanceError(AttributeError):
    pass


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")
