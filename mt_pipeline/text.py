"""Line-level text normalisation and token counting.

* Every line: control characters and Unicode line/paragraph separators become spaces,
  runs of whitespace collapse to one space, ends are stripped. (fairseq reads text files
  in universal-newline mode, so a stray "\\r" left inside a line would split it there and
  break the parallelism of the binarized files.)
* Punctuation (optional, on by default): Moses' normalize-punctuation rules through
  ``sacremoses.MosesPunctNormalizer(lang)``, the step of the WMT systems and of fairseq's
  WMT preparation scripts; it maps typographic quotes, dashes and spacing around
  punctuation to one convention. Not applied to Chinese or Japanese (their full-width
  punctuation is left as it is; SentencePiece's NFKC normalisation covers the rest).
* Romanian: cedilla forms of s and t (ş ţ Ş Ţ) become the comma-below letters (ș ț Ș Ț),
  the normalisation step of the WMT16 Romanian systems; diacritics are kept.
* No word tokenisation: SentencePiece segments raw text (Chinese included, no jieba).

References used for BLEU are never normalised: the raw test files are kept as they come.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .errors import PipelineError

UNSEGMENTED_LANGUAGES = {"zh", "ja"}
NO_PUNCT_NORMALISATION = {"zh", "ja"}

_SPACES = re.compile(r"[\s\x00-\x1f\x7f\x85\u00a0\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
_INVISIBLE = re.compile(r"[\u200b\ufeff]")
# Characters written without spaces between words: each counts as one token.
_CJK = (
    "\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f"
)
_CJK_TOKENS = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")
_RO_CEDILLA = str.maketrans({"\u015e": "\u0218", "\u015f": "\u0219", "\u0162": "\u021a", "\u0163": "\u021b"})


def base_language(lang: str) -> str:
    """'zh' for 'zh', 'zh_CN', 'zho_Hans'...; the two-letter code for the languages we know."""
    head = re.split(r"[_\-]", lang.lower())[0]
    return {"zho": "zh", "cmn": "zh", "jpn": "ja", "ron": "ro", "rum": "ro", "deu": "de", "ger": "de",
            "eng": "en", "fra": "fr", "fre": "fr", "fin": "fi"}.get(head, head)


def squeeze_spaces(line: str) -> str:
    return _SPACES.sub(" ", _INVISIBLE.sub("", line)).strip()


@lru_cache(maxsize=None)
def _punct_normalizer(lang: str):
    try:
        from sacremoses import MosesPunctNormalizer
    except ImportError:
        raise PipelineError(
            "punctuation normalisation needs sacremoses (pip install sacremoses==0.1.1), "
            "or turn it off with --no-normalize-punct"
        ) from None
    return MosesPunctNormalizer(lang=lang)


def normalize_line(line: str, lang: str, *, punct: bool = True) -> str:
    """The normalised form of one line of text in language ``lang`` (see the module docstring)."""
    lang = base_language(lang)
    line = squeeze_spaces(line)
    if lang == "ro":
        line = line.translate(_RO_CEDILLA)
    if punct and lang not in NO_PUNCT_NORMALISATION and line:
        line = squeeze_spaces(_punct_normalizer(lang).normalize(line))
    return line


def count_tokens(line: str, lang: str) -> int:
    """Whitespace tokens; for languages written without spaces (zh, ja) each CJK
    character counts as one token (a rough word count that makes length and ratio
    filters meaningful before any segmentation)."""
    if base_language(lang) in UNSEGMENTED_LANGUAGES:
        return len(_CJK_TOKENS.findall(line))
    return len(line.split())
