"""A read-only mapping whose values are made on first lookup (`LazyMap`).

The simulator lists ten chains a minute (four SPX expiries, six VIX) and a step reads one or
two of them: a snapshot's `chains` and `vix_chains` are `LazyMap`s of expiry -> chain, each
chain made (from the arguments the build gave it) the first time it is looked up, then
kept, so every lookup of one key gives the same object. The arguments may themselves be
given as a function that lists them, called on the first use of the map (a step that never
reads VIX chains does not list them). Iteration does not make values, `items()`/`values()` do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, ValuesView
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class _Listed(Mapping[K, V]):
    """Membership, iteration and length read the listing (`_listing`, a dict made on first
    use by the subclass)."""

    __slots__ = ()
    _listing: Any

    def __contains__(self, key: object) -> bool:
        return key in self._listing

    def __iter__(self) -> Iterator[K]:
        return iter(self._listing)

    def __len__(self) -> int:
        return len(self._listing)


class LazyMap(_Listed[K, V]):
    __slots__ = ("_a", "_make", "_made")

    def __init__(self, args: dict[K, tuple[Any, ...]] | Callable[[], dict[K, tuple[Any, ...]]],
                 make: Callable[..., V]) -> None:
        self._a = args  # key -> the arguments of make(...) for its value; or what lists them
        self._make = make
        self._made: dict[K, V] = {}

    @property
    def _args(self) -> dict[K, tuple[Any, ...]]:
        a = self._a
        if not isinstance(a, dict):
            a = self._a = a()
        return a

    def __getitem__(self, key: K) -> V:
        v = self._made.get(key)
        if v is None:
            v = self._made[key] = self._make(*self._args[key])  # KeyError when not listed
        return v

    def get(self, key: K, default: Any = None) -> Any:
        v = self._made.get(key)
        if v is None:
            a = self._a  # (`_args`, inline: a step looks up a chain or two)
            if not isinstance(a, dict):
                a = self._a = a()
            args = a.get(key)
            if args is None:
                return default
            v = self._made[key] = self._make(*args)
        return v

    _listing = _args

    def made(self) -> ValuesView[V]:
        """The values made so far (looked up at least once)."""
        return self._made.values()

    def __repr__(self) -> str:
        return f"LazyMap({dict(self)!r})"


class LazyDict(_Listed[K, V]):
    """A read-only mapping listed by `fn()` on its first use (a build's VIX futures: most
    steps read none)."""

    __slots__ = ("_fn", "_d")

    def __init__(self, fn: Callable[[], dict[K, V]]) -> None:
        self._fn: Callable[[], dict[K, V]] | None = fn
        self._d: dict[K, V] | None = None

    @property
    def _dict(self) -> dict[K, V]:
        d = self._d
        if d is None:
            assert self._fn is not None
            d = self._d = self._fn()
            self._fn = None
        return d

    def __getitem__(self, key: K) -> V:
        return self._dict[key]

    _listing = _dict

    def get(self, key: K, default: Any = None) -> Any:
        return self._dict.get(key, default)

    def __reduce__(self) -> tuple:
        return dict, (self._dict,)

    def __repr__(self) -> str:
        return f"LazyDict({self._dict!r})"
