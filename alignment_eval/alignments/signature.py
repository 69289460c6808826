"""Signatures for alignment scores, in the spirit of sacrebleu's metric signatures.

A signature records every setting that changes an AER number, rendered as
``key:value`` pairs joined by ``|``, for example::

    gold:deen.gold|gold-base:1|hyp-base:0|rev-gold:no|rev-hyp:no|possible:P=S+P|version:0.1.0

Keys, in order:

* ``gold`` gold file name; ``gold-base`` / ``hyp-base`` index base (0 or 1);
  ``rev-gold`` / ``rev-hyp`` whether i and j were swapped (``yes``/``no``);
  ``possible`` possible-link handling (:data:`POSSIBLE_MODES`).
* Optional, for alignments extracted from a model: ``layer``, ``head`` (an int or
  ``avg``), ``method``, ``shift``, ``subword`` (subword-to-word rule), ``sym``
  (symmetrisation).
* ``version`` the :mod:`alignment_eval` version, always last.
"""

from __future__ import annotations

from typing import Iterator, Mapping, Optional, Union

from .version import __version__

__all__ = ["Signature", "POSSIBLE_MODES", "SIGNATURE_KEYS"]

#: possible-link handling -> signature value.
#: ``p-includes-s``: S = sure, P = sure ∪ possible (Och & Ney 2003; the default).
#: ``all-sure``: every gold link is sure (S = P = sure ∪ possible).
#: ``ignore-possible``: possible links are dropped (S = P = sure).
POSSIBLE_MODES: dict[str, str] = {
    "p-includes-s": "P=S+P",
    "all-sure": "S=P=S+P",
    "ignore-possible": "S=P=S",
}

#: Known keys in rendering order (``version`` is always rendered last).
SIGNATURE_KEYS: tuple[str, ...] = (
    "gold",
    "gold-base",
    "hyp-base",
    "rev-gold",
    "rev-hyp",
    "possible",
    "layer",
    "head",
    "method",
    "shift",
    "subword",
    "sym",
    "version",
)

SignatureValue = Union[str, int, bool]


def _render(value: SignatureValue) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    if not text or any(ch in text for ch in "|\n\r"):
        raise ValueError(f"signature value {text!r} must be non-empty and contain no '|' or line break")
    return text


class Signature(Mapping[str, str]):
    """An ordered, immutable ``key -> value`` mapping rendered as ``k:v|k:v|...``."""

    def __init__(self, items: Mapping[str, SignatureValue]) -> None:
        rendered: dict[str, str] = {}
        for key, value in items.items():
            if not key or any(ch in key for ch in "|:\n\r"):
                raise ValueError(f"invalid signature key {key!r}")
            rendered[key] = _render(value)
        self._items = rendered

    @classmethod
    def for_aer(
        cls,
        gold: str,
        *,
        gold_one_based: bool,
        hyp_one_based: bool,
        reverse_gold: bool = False,
        reverse_hyp: bool = False,
        possible: str = "p-includes-s",
        layer: Optional[int] = None,
        head: Optional[Union[int, str]] = None,
        method: Optional[str] = None,
        shift: Optional[Union[bool, int]] = None,
        subword: Optional[str] = None,
        symmetrization: Optional[str] = None,
    ) -> "Signature":
        """Build the signature of an AER evaluation; optional keys are omitted when ``None``."""
        if possible not in POSSIBLE_MODES:
            raise ValueError(f"unknown possible-link mode {possible!r}; choose from {sorted(POSSIBLE_MODES)}")
        if isinstance(head, str) and head != "avg":
            raise ValueError(f"head must be an int or 'avg', not {head!r}")
        items: dict[str, SignatureValue] = {
            "gold": gold,
            "gold-base": 1 if gold_one_based else 0,
            "hyp-base": 1 if hyp_one_based else 0,
            "rev-gold": reverse_gold,
            "rev-hyp": reverse_hyp,
            "possible": POSSIBLE_MODES[possible],
        }
        optional: dict[str, Optional[SignatureValue]] = {
            "layer": layer,
            "head": head,
            "method": method,
            "shift": shift,
            "subword": subword,
            "sym": symmetrization,
        }
        items.update({key: value for key, value in optional.items() if value is not None})
        items["version"] = __version__
        return cls(items)

    def with_items(self, **extra: Optional[SignatureValue]) -> "Signature":
        """Return a copy with keys added or replaced (``None`` values skipped), ``version`` kept last.

        Python names map to keys by replacing ``_`` with ``-``.
        """
        merged: dict[str, SignatureValue] = {k: v for k, v in self._items.items() if k != "version"}
        for name, value in extra.items():
            if value is not None:
                merged[name.replace("_", "-")] = value
        merged["version"] = self._items.get("version", __version__)
        return Signature(merged)

    @classmethod
    def parse(cls, text: str) -> "Signature":
        """Parse a rendered signature back (inverse of ``str``)."""
        items: dict[str, SignatureValue] = {}
        for part in text.strip().split("|"):
            key, sep, value = part.partition(":")
            if not sep:
                raise ValueError(f"malformed signature part {part!r} (expected key:value)")
            items[key] = value
        return cls(items)

    def as_dict(self) -> dict[str, str]:
        """A plain ``dict`` copy, in rendering order."""
        return dict(self._items)

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __str__(self) -> str:
        return "|".join(f"{key}:{value}" for key, value in self._items.items())

    def __repr__(self) -> str:
        return f"Signature({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Signature):
            return list(self._items.items()) == list(other._items.items())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))
