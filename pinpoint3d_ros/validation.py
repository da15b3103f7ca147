"""
Request validation for ~/click_segment: every field checked before any work, ROS-free.

The node turns the request message into plain values and calls :func:`check_request`; what
comes back is safe to use (finite numbers, bounded ids and radius, a well-formed interaction
key). Anything else raises :class:`RequestError` (a ClickError) whose message names the field
and the allowed range, so the caller can fix the request; nothing here allocates per id.
"""

from dataclasses import dataclass
import math
import re
from typing import Iterable, Optional, Tuple

from pinpoint3d_core.errors import ClickError

GRANULARITIES = ('object', 'part', 'both')
# Ids a request may name: enough for any interactive scene, and small enough that every
# per-id table downstream (colours, scores, boxes) stays tiny.
MAX_OBJECT_ID = 1000
MAX_PART_ID = 1000
# Largest snap radius a request or the parameter may ask for (metres): a click farther than
# this from every point is a wrong frame or a wrong unit, never a click on the object.
MAX_SNAP_RADIUS = 1.0
# Click coordinates beyond this (metres, absolute) cannot be on any sensor's cloud.
MAX_COORDINATE = 1.0e6
# Clicks one request may carry (an interaction holds at most the model's click limit anyway).
MAX_CLICKS_PER_REQUEST = 200
# Interaction keys: short, printable, safe to log.
MAX_KEY_LENGTH = 64
_KEY = re.compile(r'[A-Za-z0-9_.:/\-]+')


class RequestError(ClickError):
    """A request field is out of range or malformed; the message says which and why."""


@dataclass(frozen=True)
class RequestClick:
    """One validated click: finite position (request frame), bounded ids, polarity."""

    position: Tuple[float, float, float]
    object_id: int
    part_id: int
    positive: bool


@dataclass(frozen=True)
class ValidRequest:
    """A request whose every field passed :func:`check_request`."""

    interaction_id: str          # '' = start a new interaction
    clicks: Tuple[RequestClick, ...]
    granularity: str
    reset: bool
    snap_radius: float
    newer_than_ns: int           # 0 = no demand on the cloud's stamp


def check_interaction_id(key: str) -> str:
    """Return ``key`` if it is '' or a well-formed interaction key; else raise RequestError."""
    if not isinstance(key, str):
        raise RequestError(f'interaction_id must be a string, not {type(key).__name__}.')
    if key == '':
        return key
    if len(key) > MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        shown = key[:MAX_KEY_LENGTH] + ('...' if len(key) > MAX_KEY_LENGTH else '')
        raise RequestError(
            f'interaction_id {shown!r} is not a valid key: use 1..{MAX_KEY_LENGTH} letters, '
            "digits or '_.:/-' (or leave it empty to start a new interaction).")
    return key


def check_snap_radius(value: float, default: float) -> float:
    """Return the snap radius to use (0 = ``default``); refuse NaN, inf, < 0 or > the max."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise RequestError(f'snap_radius must be a number, not {value!r}.') from None
    if not math.isfinite(value) or value < 0 or value > MAX_SNAP_RADIUS:
        raise RequestError(
            f'snap_radius must be within [0, {MAX_SNAP_RADIUS}] m (0 = the node parameter, '
            f'now {default:g} m), not {value!r}.')
    return value if value > 0 else float(default)


def _check_int(i: int, name: str, value, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise RequestError(f'click {i}: {name} must be an integer in 0..{high}, not {value!r}.')
    return int(value)


def check_click(i: int, position, object_id, part_id, positive) -> RequestClick:
    """Validate one click's fields (finite bounded position, ids, polarity rules)."""
    try:
        pos = tuple(float(v) for v in position)
    except (TypeError, ValueError):
        raise RequestError(f'click {i}: position must be three numbers.') from None
    if len(pos) != 3:
        raise RequestError(f'click {i}: position must be three numbers, got {len(pos)}.')
    if not all(math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in pos):
        raise RequestError(
            f'click {i}: position {pos} must be finite and within {MAX_COORDINATE:g} m of the '
            'origin of the request frame.')
    obj = _check_int(i, 'object_id', object_id, MAX_OBJECT_ID)
    part = _check_int(i, 'part_id', part_id, MAX_PART_ID)
    positive = bool(positive)
    if positive and obj == 0:
        raise RequestError(f'click {i}: positive clicks need an object_id >= 1 (0 is '
                           'background); use positive=false for a background click.')
    if not positive and part:
        raise RequestError(f'click {i}: a negative click cannot name a part (part_id '
                           f'{part}); use part_id 0.')
    return RequestClick(pos, obj, part, positive)


def stamp_ns(sec: int, nanosec: int) -> int:
    """Return a builtin_interfaces/Time as integer nanoseconds (checked)."""
    if isinstance(sec, bool) or not isinstance(sec, int) or sec < 0:
        raise RequestError(f'cloud_newer_than.sec must be >= 0, not {sec!r}.')
    if isinstance(nanosec, bool) or not isinstance(nanosec, int) or not (
            0 <= nanosec < 1_000_000_000):
        raise RequestError(f'cloud_newer_than.nanosec must be in 0..999999999, not {nanosec!r}.')
    return sec * 1_000_000_000 + nanosec


def check_request(interaction_id: str, clicks: Iterable, granularity: str, reset: bool,
                  snap_radius: float, newer_than: Tuple[int, int] = (0, 0),
                  default_granularity: str = 'both',
                  default_snap_radius: float = 0.05) -> ValidRequest:
    """
    Validate a whole request; ``clicks`` are (position, object_id, part_id, positive).

    Raises RequestError on the first bad field; the result holds the effective values
    (defaults applied), so nothing downstream re-reads the raw request.
    """
    key = check_interaction_id(interaction_id)
    if not isinstance(granularity, str):
        raise RequestError('granularity must be a string.')
    gran = granularity or default_granularity
    if gran not in GRANULARITIES:
        raise RequestError(
            f"granularity must be 'object', 'part' or 'both' (empty = the node parameter, "
            f"now '{default_granularity}'), not {granularity!r}.")
    clicks = list(clicks)
    if len(clicks) > MAX_CLICKS_PER_REQUEST:
        raise RequestError(f'a request may carry at most {MAX_CLICKS_PER_REQUEST} clicks, '
                           f'not {len(clicks)}.')
    checked = tuple(check_click(i, *c) for i, c in enumerate(clicks))
    radius = check_snap_radius(snap_radius, default_snap_radius)
    return ValidRequest(key, checked, gran, bool(reset), radius, stamp_ns(*newer_than))


def describe_stamp(ns: Optional[int]) -> str:
    """Format nanoseconds as 'sec.nanosec' for messages."""
    if ns is None:
        return 'none'
    return f'{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}'
