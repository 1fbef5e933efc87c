"""Text handling for 12345 hotline appeals: text in, clean text / tokens out.

Public API
----------
- :func:`normalize` -- full-width ASCII to half-width, HTML remnants removed,
  zero-width / control characters dropped, whitespace collapsed.
- :func:`mask_pii` -- phone numbers, landlines, ID numbers, bank cards and
  e-mail addresses replaced with Chinese placeholders (``[手机号]`` ...).
- :func:`clean` -- ``mask_pii(normalize(text))``.
- :func:`below` -- "value < threshold" for review reasons, never shown as equal.
- :func:`has_text` -- whether a text holds anything visible (not only spaces or
  zero-width / format characters).
- :func:`tokenize` -- jieba segmentation (HMM off) with the domain user
  dictionary; whitespace / punctuation-only tokens dropped.
- :func:`tokenizer_dictionary_path` -- path of that user dictionary.

This module does no I/O besides reading jieba's dictionaries once per process.
"""

from __future__ import annotations

import html
import re
import threading
import unicodedata
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import rjieba

__all__ = [
    "PLACEHOLDER_BANK_CARD",
    "PLACEHOLDER_EMAIL",
    "PLACEHOLDER_ID",
    "PLACEHOLDER_LANDLINE",
    "PLACEHOLDER_MOBILE",
    "below",
    "clean",
    "has_text",
    "mask_pii",
    "normalize",
    "tokenize",
    "tokenizer_dictionary_path",
]

DATA_DIR = Path(__file__).parent / "data"
_USERDICT_PATH = DATA_DIR / "userdict.txt"

PLACEHOLDER_MOBILE = "[手机号]"
PLACEHOLDER_LANDLINE = "[固话]"
PLACEHOLDER_ID = "[身份证号]"
PLACEHOLDER_BANK_CARD = "[银行卡号]"
PLACEHOLDER_EMAIL = "[邮箱]"

# --------------------------------------------------------------------------- #
# normalize
# --------------------------------------------------------------------------- #

# Zero-width / invisible formatting characters that carry no text.
_INVISIBLE = (
    "\u00ad"  # soft hyphen
    "\u034f"  # combining grapheme joiner
    "\u061c"  # arabic letter mark
    "\u180e"  # mongolian vowel separator
    "\u200b\u200c\u200d\u200e\u200f"  # zero-width space/non-joiner/joiner, LRM, RLM
    "\u202a\u202b\u202c\u202d\u202e"  # bidi embeddings / overrides
    "\u2060\u2061\u2062\u2063\u2064"  # word joiner, invisible operators
    "\u2066\u2067\u2068\u2069"  # bidi isolates
    "\ufeff"  # BOM / zero-width no-break space
)


# Full-width forms that are the standard Chinese punctuation marks (GB/T 15834) and
# live inside U+FF01..U+FF5E: they are kept so Chinese text keeps its punctuation.
_KEEP_FULLWIDTH = frozenset("！（），：；？")


def _build_translation() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    # Full-width ASCII block U+FF01..U+FF5E -> U+0021..U+007E; ideographic space -> space.
    for cp in range(0xFF01, 0xFF5F):
        if chr(cp) not in _KEEP_FULLWIDTH:
            table[cp] = chr(cp - 0xFEE0)
    table[0x3000] = " "
    # C0/C1 control characters: whitespace-like ones become a space (collapsed later),
    # everything else is dropped.
    for cp in [*range(0x00, 0x20), *range(0x7F, 0xA0)]:
        table[cp] = None
    for ch in "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85":
        table[ord(ch)] = " "
    for ch in _INVISIBLE:
        table[ord(ch)] = None
    # Unicode line / paragraph separators.
    table[0x2028] = " "
    table[0x2029] = " "
    return table


_TRANSLATION = _build_translation()
# Runs of characters that _TRANSLATION changes; translating only those runs is much
# cheaper than str.translate over a whole (non-ASCII) text.
_TRANSLATABLE_RE = re.compile(
    "[" + "".join(re.escape(chr(cp)) for cp in sorted(_TRANSLATION)) + "]+"
)


def _translate_run(m: re.Match[str]) -> str:
    return m.group(0).translate(_TRANSLATION)

# HTML comments, <script>/<style> blocks (content is never appeal text) and tags.
_HTML_BLOCK_RE = re.compile(
    r"<!--.*?-->|<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL
)
_HTML_TAG_RE = re.compile(
    r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]{0,500})?/?>"  # <p>, </p>, <br/>, <a href=...>
    r"|<![A-Za-z][^<>]{0,500}>"  # <!DOCTYPE html>
)
# Something html.unescape could decode: &name; &#123; &#x1F;
_HTML_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?")
_WHITESPACE_RE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Return ``text`` cleaned of encoding and markup noise.

    * full-width ASCII (U+FF01-U+FF5E) becomes half-width (``ＡＢＣ１２３`` -> ``ABC123``,
      ``＠＃％＆`` -> ``@#%&``), U+3000 ideographic space becomes a space; the standard
      Chinese punctuation marks are kept as is, including the ones inside that block
      (``！（），：；？``) and those outside it (``。、《》“”【】…``);
    * HTML tags (``<p>``, ``<br/>`` ...), comments and ``<script>``/``<style>`` blocks are
      replaced by a space; entities (``&nbsp;``, ``&amp;``, ``&lt;``, ``&#12345;``) are decoded;
    * zero-width, bidi and control characters are removed;
    * runs of whitespace collapse to one space and the result is stripped.

    The function is idempotent for practical inputs and safe to call on any ``str``.
    """
    if not text:
        return ""
    text = _TRANSLATABLE_RE.sub(_translate_run, text)
    if "<" in text:
        text = _HTML_BLOCK_RE.sub(" ", text)
        text = _HTML_TAG_RE.sub(" ", text)
    if "&" in text and _HTML_ENTITY_RE.search(text):
        # Decoded entities may yield full-width, invisible or control characters again.
        text = _TRANSLATABLE_RE.sub(_translate_run, html.unescape(text))
    return _WHITESPACE_RE.sub(" ", text).strip()


# --------------------------------------------------------------------------- #
# mask_pii
# --------------------------------------------------------------------------- #

# ISO 7064 MOD 11-2 weights and check characters for the 18-digit resident ID.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def _id_checksum_ok(number: str) -> bool:
    """True when an 18-character ID number has a valid ISO 7064 MOD 11-2 check digit."""
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=False))
    return _ID_CHECK[total % 11] == number[17].upper()


def _luhn_ok(digits: str) -> bool:
    """True when the digit string passes the Luhn (mod 10) check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# Performance note: each pattern *starts* with a character class and checks "not
# preceded by a digit" right after it (``\d(?<!\d\d)`` == ``(?<!\d)\d``), which lets
# the regex engine skip ahead to candidate characters instead of trying every
# position of the (mostly Chinese) text: about 4x faster on a typical appeal.

_EMAIL_RE = re.compile(
    r"[A-Za-z0-9](?<![A-Za-z0-9._%+-][A-Za-z0-9])[A-Za-z0-9._%+-]{0,63}@"
    r"[A-Za-z0-9][A-Za-z0-9-]{0,62}(?:\.[A-Za-z0-9][A-Za-z0-9-]{0,62})*"
    r"\.[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)

# 17 digits + digit/X, contiguous or written 6-8-4 with one space/dash separator,
# not part of a longer digit run.
_ID_RE = re.compile(r"\d(?<!\d\d)\d{5}(?P<sep>[ -]?)\d{8}(?P=sep)\d{3}[\dXx](?![\dXx])")

# 16-19 digits, either contiguous or in groups of 4 with one consistent separator
# (4-4-4-4 plus an optional last group of 1-3). Grouped numbers must not be the
# middle of a longer grouped run (e.g. "1234 5678 9012 3456 7890").
_BANK_CARD_RE = re.compile(
    r"\d(?<!\d\d)(?:"
    r"\d{15,18}"
    r"|(?<!(?<!\d)\d{4}[ -]\d)\d{3}(?P<sep>[ -])\d{4}(?P=sep)\d{4}(?P=sep)\d{4}"
    r"(?:(?P=sep)\d{1,3})?(?![ -]\d{4}(?!\d))"
    r")(?!\d)"
)

# Mainland mobile 1[3-9]x-xxxx-xxxx (optional space/dash between the 3-4-4 groups),
# with an optional +86 / 0086 / 86 prefix; never preceded by a digit or "+".
_MOBILE_RE = re.compile(
    r"(?:\+(?<![\d+]\+)86[ -]?1"
    r"|0(?<![\d+]0)086[ -]?1"
    r"|8(?<![\d+]8)6[ -]?1"
    r"|1(?<![\d+]1))"
    r"[3-9]\d(?:[ -]?\d{4}){2}(?!\d)"
)

# Landline: area code 0 + 2-3 digits (optionally in parentheses), optional dash/space,
# 7-8 digit number, optional extension (-123, 转123, 分机123, ext 123, #123).
_LANDLINE_RE = re.compile(
    r"(?:\(0\d{2,3}\)|（0\d{2,3}）|0(?<!\d0)\d{2,3})[ -]?\d{7,8}"
    r"(?:(?:-|转|分机|\s?ext\.?\s?|#)\d{1,6})?(?!\d)",
    re.IGNORECASE,
)

_DIGITS_ONLY = re.compile(r"\D")
_DIGITS_ONLY_KEEP_X = re.compile(r"[^\dXx]")
_HAS_LONG_DIGITS = re.compile(r"\d{4}")


def _mask_id(m: re.Match[str]) -> str:
    s = m.group(0)
    return PLACEHOLDER_ID if _id_checksum_ok(_DIGITS_ONLY_KEEP_X.sub("", s)) else s


def _mask_bank_card(m: re.Match[str]) -> str:
    s = m.group(0)
    return PLACEHOLDER_BANK_CARD if _luhn_ok(_DIGITS_ONLY.sub("", s)) else s


def mask_pii(text: str) -> str:
    """Replace personal data in ``text`` with placeholders.

    Applied in this order, each match bounded by non-digits so that digits inside
    a longer run are never partially masked:

    1. e-mail addresses -> ``[邮箱]`` (first, so ``13812345678@qq.com`` is one e-mail);
    2. 18-character ID numbers (17 digits + digit/X, also grouped 6-8-4) whose
       ISO 7064 MOD 11-2 check digit is valid -> ``[身份证号]``; a bad checksum leaves
       the run to the bank-card check (and otherwise untouched);
    3. bank cards: 16-19 digits, contiguous or grouped in 4s by spaces/dashes,
       Luhn-valid -> ``[银行卡号]``;
    4. mainland mobiles ``1[3-9]`` + 9 digits, with optional ``+86``/``86`` prefix and
       3-4-4 spaces/dashes -> ``[手机号]``;
    5. landlines ``0`` + 2-3 digit area code, optional dash, 7-8 digits, optional
       extension -> ``[固话]``.

    Ordinary numbers (``2026年3月``, ``3栋2单元``, ``12345热线``, ``5000元``) stay as they are.
    Expects half-width digits for best results; use :func:`clean` on raw input.
    """
    if not text:
        return text
    if "@" in text:
        text = _EMAIL_RE.sub(PLACEHOLDER_EMAIL, text)
    if not _HAS_LONG_DIGITS.search(text):  # every digit pattern has a run of >= 4 digits
        return text
    text = _ID_RE.sub(_mask_id, text)
    text = _BANK_CARD_RE.sub(_mask_bank_card, text)
    text = _MOBILE_RE.sub(PLACEHOLDER_MOBILE, text)
    text = _LANDLINE_RE.sub(PLACEHOLDER_LANDLINE, text)
    return text


def clean(text: str) -> str:
    """``mask_pii(normalize(text))``: the text every downstream consumer should see."""
    return mask_pii(normalize(text))


# Unicode categories that show nothing: control (Cc) and format (Cf: zero-width spaces and
# joiners, the BOM, word joiner, bidi marks, tag characters ...) characters.
_SILENT_CATEGORIES = frozenset({"Cc", "Cf"})


def has_text(text: str | None) -> bool:
    r"""Whether ``text`` holds something a person can read: a character that is neither whitespace
    nor an invisible control or format character (``"\u200b\u200b"`` holds nothing).

    >>> has_text("\u200b \ufeff"), has_text("\u200b噪音")
    (False, True)
    """
    return bool(text) and any(
        not ch.isspace() and unicodedata.category(ch) not in _SILENT_CATEGORIES for ch in text)


def below(value: float, threshold: float) -> str:
    """``"0.59 < 0.60"`` for a review reason: the value rounded down, with as many decimals as
    it takes for the shown value to stay under the shown threshold (0.597 is never "0.60 < 0.60").

    >>> below(0.597, 0.6), below(0.6049, 0.605)
    ('0.59 < 0.60', '0.604 < 0.605')
    """
    shown_value = shown_threshold = ""
    for places in (2, 3, 4, 6):
        step = Decimal(1).scaleb(-places)
        shown_value = str(Decimal(repr(float(value))).quantize(step, rounding=ROUND_FLOOR))
        shown_threshold = str(Decimal(repr(float(threshold))).quantize(step))
        if Decimal(shown_value) < Decimal(shown_threshold):
            break
    return f"{shown_value} < {shown_threshold}"


# --------------------------------------------------------------------------- #
# tokenize
# --------------------------------------------------------------------------- #

_tokenizer: rjieba.Jieba | None = None
_tokenizer_lock = threading.Lock()

# A token made only of non-word characters (whitespace, punctuation, symbols) or "_".
_NOISE_TOKEN_RE = re.compile(r"[\W_]+")


def tokenizer_dictionary_path() -> Path:
    """Path of the domain user dictionary (jieba format: ``word freq pos`` per line)."""
    return _USERDICT_PATH


def _get_tokenizer() -> rjieba.Jieba:
    """Return the process-wide segmenter, building it on first use (thread-safe).

    rjieba is jieba's algorithm and dictionary in Rust: the same words, about 17 times faster
    (9,200 against 540 appeals of 400 characters a second on one core here).
    """
    global _tokenizer
    tk = _tokenizer
    if tk is not None:
        return tk
    with _tokenizer_lock:
        if _tokenizer is None:
            new = rjieba.Jieba()
            for line in _USERDICT_PATH.read_text(encoding="utf-8").splitlines():
                parts = line.split()
                if parts:
                    freq = int(parts[1]) if len(parts) > 1 else 1000
                    new.add_word(parts[0], freq, parts[2] if len(parts) > 2 else "n")
            _tokenizer = new
        return _tokenizer


def tokenize(text: str) -> list[str]:
    """Segment ``text`` into words with jieba (rjieba, HMM off) and the domain user dictionary.

    Domain terms such as ``农民工工资``, ``噪音扰民``, ``12345热线`` stay whole; tokens made
    only of whitespace, punctuation or symbols are dropped. Text is not normalized
    here: pass the output of :func:`clean`. The jieba dictionary is loaded once per
    process on first call (about a second).
    """
    if not text or text.isspace():
        return []
    tk = _get_tokenizer()
    noise = _NOISE_TOKEN_RE.fullmatch
    return [t for t in tk.cut(text, False) if not noise(t)]
