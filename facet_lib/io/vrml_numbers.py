"""Bulk reading of VRML's big numeric lists (``point [...]``, ``coordIndex [...]``) in compiled code.

The grammar parser (``wrl.py``) hands over the byte position just after a ``[``; ``scan_numbers``
reads numbers separated by white space, commas and ``#`` comments up to the closing ``]`` in one
compiled loop (no Python work per number), and reports the first token that is not a number.

Exactness: a decimal whose digits form an integer mantissa below 2**53 (about 15 significant
digits) and whose decimal exponent is within ±22 is ``mantissa * 10**e`` or ``mantissa / 10**-e``
with both operands exact doubles, so IEEE arithmetic rounds it exactly as ``strtod``/``float()`` do.
Tokens outside that range (long mantissas such as ``%.17g`` output, huge exponents) are marked and
re-read with Python's ``float`` by the caller (or the whole list, when most of it is like that).
"""

from __future__ import annotations

import re

import numba
import numpy as np

from facet_lib.errors import ScanFormatError

_POW10 = np.array([10.0**k for k in range(23)])  # 1e0 … 1e22, all exact doubles

_LIST_BODY = re.compile(rb"((?:[^\]#]|#[^\n]*)*)\]")

# result codes
OK, NOT_A_NUMBER, UNTERMINATED, FULL = 0, 1, 2, 3


# byte classes: white space and commas separate, '#' starts a comment, ']' ends the list
_SEP, _DIGIT, _HASH, _OTHER, _CLOSE = 0, 1, 2, 3, 4
_CLASS = np.full(256, _OTHER, np.uint8)
_CLASS[list(b" \t\r\n\x0b\x0c,")] = _SEP
_CLASS[list(b"0123456789")] = _DIGIT
_CLASS[ord("#")], _CLASS[ord("]")] = _HASH, _CLOSE
_WORDS = np.array([list(b"infinity"), list(b"inf\0\0\0\0\0"), list(b"nan\0\0\0\0\0")], np.uint8)
_WORD_LEN = np.array([8, 3, 3])


@numba.njit(cache=True, nogil=True)
def _word(buf, i: int, n: int, words, lens) -> tuple[int, int]:
    """(which, length) of the first of ``words`` that buf[i:] starts with, case-insensitively; (-1, 0) if none."""
    for w in range(words.shape[0]):
        k = lens[w]
        if i + k > n:
            continue
        ok = True
        for j in range(k):
            c = buf[i + j]
            if 65 <= c <= 90:
                c += 32
            if c != words[w, j]:
                ok = False
                break
        if ok:
            return w, k
    return -1, 0


@numba.njit(cache=True, nogil=True)
def _scan(buf, pos, out, slow, pow10, cls, words, lens):
    """Read numbers from ``buf[pos:]`` up to ``]``.

    Returns (code, count, position, n_slow): for OK the position is just after ``]``; for
    NOT_A_NUMBER it is the start of the offending token; FULL means ``out`` or ``slow`` ran out of room.
    ``slow[k] = (index in out, token start, token end)`` for tokens that need an exact re-read.
    """
    n = buf.shape[0]
    i, cnt, ns = pos, 0, 0
    while True:
        while i < n:  # white space, commas and comments separate numbers
            k = cls[buf[i]]
            if k == 0:
                i += 1
            elif k == 2:  # '#' to end of line
                while i < n and buf[i] != 10:
                    i += 1
            else:
                break
        if i >= n:
            return UNTERMINATED, cnt, i, ns
        if buf[i] == 93:  # ']'
            return OK, cnt, i + 1, ns
        if cnt >= out.shape[0]:
            return FULL, cnt, i, ns
        start = i
        neg = buf[i] == 45
        if neg or buf[i] == 43:  # '-' '+'
            i += 1
        mant, ndig, frac = 0, 0, 0  # mant may wrap past 18 digits: such tokens take the exact slow path
        while i < n:
            d = np.int64(buf[i]) - 48
            if d < 0 or d > 9:
                break
            mant = mant * 10 + d
            ndig += 1
            i += 1
        if i < n and buf[i] == 46:  # '.'
            i += 1
            while i < n:
                d = np.int64(buf[i]) - 48
                if d < 0 or d > 9:
                    break
                mant = mant * 10 + d
                frac += 1
                ndig += 1
                i += 1
            if ndig == 0:
                return NOT_A_NUMBER, cnt, start, ns  # a lone '.'
        value = 0.0
        needs_slow = False
        if ndig == 0:
            w, k = _word(buf, i, n, words, lens)
            if w < 0:
                return NOT_A_NUMBER, cnt, start, ns
            value = np.nan if w == 2 else np.inf
            i += k
        else:
            e10 = 0
            if i < n and (buf[i] == 101 or buf[i] == 69):  # exponent
                i += 1
                eneg = False
                if i < n and (buf[i] == 45 or buf[i] == 43):
                    eneg = buf[i] == 45
                    i += 1
                if i >= n or cls[buf[i]] != 1:
                    return NOT_A_NUMBER, cnt, start, ns
                while i < n and cls[buf[i]] == 1:
                    if e10 < 100_000:
                        e10 = e10 * 10 + (buf[i] - 48)
                    i += 1
                if eneg:
                    e10 = -e10
            e10 -= frac
            if ndig <= 18 and mant < 9_007_199_254_740_992 and -22 <= e10 <= 22:
                value = mant * pow10[e10] if e10 >= 0 else mant / pow10[-e10]
            elif ndig > 18 or mant != 0:
                needs_slow = True
        if i < n and cls[buf[i]] == 3:
            return NOT_A_NUMBER, cnt, start, ns  # e.g. "1.5x", "3{", "1-2"
        if needs_slow:
            if ns >= slow.shape[0]:
                return FULL, cnt, start, ns
            slow[ns, 0], slow[ns, 1], slow[ns, 2] = cnt, start, i
            ns += 1
        out[cnt] = -value if neg else value
        cnt += 1


def token_at(raw: bytes, pos: int) -> str:
    """The white-space delimited token starting at ``pos`` (for error messages)."""
    data = raw[pos : pos + 64].replace(b",", b" ")
    return data.split()[0].decode("utf-8", "replace") if data.strip() else ""


def scan_numbers(raw: bytes, buf: np.ndarray, pos: int, path: str, where) -> tuple[np.ndarray, int]:
    """Numbers from ``raw[pos:]`` (just after ``[``) to the matching ``]`` → (float64 array, position after ``]``).

    ``buf`` is ``raw`` viewed as uint8; ``where(pos)`` names a byte position for errors (e.g. ``line 12``).
    """
    close = raw.find(b"]", pos)  # a ']' inside a comment only makes this guess short: FULL retries
    cap = ((close if close >= 0 else len(raw)) - pos) // 2 + 1
    slow = np.empty((1024, 3), np.int64)
    while True:
        out = np.empty(cap)
        code, cnt, end, ns = _scan(buf, pos, out, slow, _POW10, _CLASS, _WORDS, _WORD_LEN)
        if code != FULL:
            break
        if ns >= slow.shape[0]:  # many long numbers (e.g. %.17g output): read the list exactly in Python
            return _scan_python(raw, pos, path, where)
        cap = (len(raw) - pos) // 2 + 1
    if code == UNTERMINATED:
        raise ScanFormatError(path, where(pos), "']' closing the list", "end of file")
    if code == NOT_A_NUMBER:
        raise ScanFormatError(path, where(end), "numbers in the list", repr(token_at(raw, end)))
    out = out[:cnt]  # the unused tail of the buffer was never touched: it costs address space, not memory
    for k in range(ns):  # exact re-read of long mantissas / large exponents
        idx, s, e = slow[k]
        out[idx] = float(raw[s:e])
    return out, end


def _scan_python(raw: bytes, pos: int, path: str, where) -> tuple[np.ndarray, int]:
    """Exact fallback for lists dominated by long numbers: tokens split in Python, read with float()."""
    m = _LIST_BODY.match(raw, pos)
    if m is None:
        raise ScanFormatError(path, where(pos), "']' closing the list", "end of file")
    body = re.sub(rb"#[^\n]*", b"", m.group(1)).replace(b",", b" ")
    try:
        return np.array([float(t) for t in body.split()]), m.end()
    except ValueError:
        raise ScanFormatError(path, where(pos), "numbers in the list", "a malformed number") from None


@numba.njit(cache=True, nogil=True)
def _indices(vals, n_points):
    """One pass over coordIndex values: (int64 indices, any non-integer, first index outside [-1, n_points))."""
    out = np.empty(vals.shape[0], np.int64)
    nonint, first_bad = False, -1
    for k in range(vals.shape[0]):
        v = vals[k]
        if not (v == np.round(v)):  # NaN included
            nonint = True
            out[k] = 0
            continue
        if v < -1 or v >= n_points:  # ±inf included
            if first_bad < 0:
                first_bad = k
            out[k] = -2
            continue
        out[k] = np.int64(v)
    return out, nonint, first_bad


def coord_indices(vals: np.ndarray, n_points: int, path: str) -> np.ndarray:
    """coordIndex values → int64 indices in [-1, n_points); ScanFormatError otherwise (as the previous reader)."""
    idx, nonint, first_bad = _indices(np.ascontiguousarray(vals, np.float64), n_points)
    if nonint:
        raise ScanFormatError(path, "coordIndex", "integer indices")
    if first_bad >= 0:
        v = vals[first_bad]
        got = str(int(v)) if np.isfinite(v) else str(v)
        raise ScanFormatError(path, f"coordIndex[{first_bad}]", f"an index in [0, {n_points - 1}] or -1", got)
    return idx
