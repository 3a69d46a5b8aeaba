"""The string and number formats ajv-formats checks (``date-time``, ``uri``, ``email``, ...): name ->
test of one value. :mod:`kb.graph.schema.validator` checks these and ignores unknown formats, as ajv
does."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from kb.graph.schema.ecma_regex import compile_ecma

__all__ = ["STRING_FORMATS", "NUMBER_FORMATS"]

_DATE = re.compile(r"^(\d\d\d\d)-(\d\d)-(\d\d)$")
_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d(?:\.\d+)?)(z|([+-])(\d\d)(?::?(\d\d))?)?$", re.I)
_DURATION = re.compile(r"^P(?!$)((\d+Y)?(\d+M)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?|(\d+W)?)$")
_URI_CHARS = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?\[\]]|%[0-9A-Fa-f]{2})"
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+\-.]*:" + _URI_CHARS + r"*(?:#" + _URI_CHARS + r"*)?$")
_URI_REF = re.compile(r"^" + _URI_CHARS + r"*(?:#(?:" + _URI_CHARS + r"|#)*)?$")
_URI_TEMPLATE = re.compile(
    r"^(?:(?:[^\x00-\x20\"'<>%\\^`{|}]|%[0-9a-f]{2})|\{[+#./;?&=,!@|]?(?:[a-z0-9_]|%[0-9a-f]{2})+(?::[1-9][0-9]{0,3}|\*)?(?:,(?:[a-z0-9_]|%[0-9a-f]{2})+(?::[1-9][0-9]{0,3}|\*)?)*\})*$",
    re.I,
)
_URL = re.compile(r"^(?:https?|ftp)://[^\s/$.?#].[^\s]*$", re.I)
_EMAIL = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
    re.I,
)
_HOSTNAME = re.compile(
    r"^(?=.{1,253}\.?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-0-9a-z]{0,61}[0-9a-z])?)*\.?$", re.I
)
_IPV4 = re.compile(r"^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$")
_UUID = re.compile(r"^(?:urn:uuid:)?[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$", re.I)
_JSON_POINTER = re.compile(r"^(?:/(?:[^~/]|~0|~1)*)*$")
_REL_JSON_POINTER = re.compile(r"^(?:0|[1-9][0-9]*)(?:#|(?:/(?:[^~/]|~0|~1)*)*)$")
_BYTE = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")
_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _is_date(s: str) -> bool:
    m = _DATE.match(s)
    if not m:
        return False
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    return 1 <= mo <= 12 and 1 <= d <= (29 if mo == 2 and leap else _DAYS[mo])


def _is_time(s: str, *, strict_tz: bool = True) -> bool:
    m = _TIME.match(s)
    if not m:
        return False
    hr, mn, sec = int(m.group(1)), int(m.group(2)), float(m.group(3))
    tz = m.group(4)
    if strict_tz and not tz:
        return False
    tzs = -1 if m.group(5) == "-" else 1
    tzh, tzm = int(m.group(6) or 0), int(m.group(7) or 0)
    if tzh > 23 or tzm > 59:
        return False
    if hr <= 23 and mn <= 59 and sec < 60:
        return True
    utc_m = mn - tzm * tzs
    utc_h = hr - tzh * tzs - (1 if utc_m < 0 else 0)
    return (utc_h == 23 or utc_h == -1) and (utc_m == 59 or utc_m == -1) and sec < 61


def _is_date_time(s: str) -> bool:
    parts = re.split(r"t|\s", s, maxsplit=1, flags=re.I)
    return len(parts) == 2 and _is_date(parts[0]) and _is_time(parts[1])


def _is_ipv6(s: str) -> bool:
    try:
        ipaddress.IPv6Address(s)
        return True
    except ValueError:
        return False


def _is_regex(s: str) -> bool:
    return compile_ecma(s) is not None


STRING_FORMATS: dict[str, Callable[[str], bool]] = {
    "date": _is_date,
    "time": _is_time,
    "date-time": _is_date_time,
    "iso-time": lambda s: _is_time(s, strict_tz=False),
    "iso-date-time": lambda s: (lambda p: len(p) == 2 and _is_date(p[0]) and _is_time(p[1], strict_tz=False))(
        re.split(r"t|\s", s, maxsplit=1, flags=re.I)
    ),
    "duration": lambda s: bool(_DURATION.match(s)),
    "uri": lambda s: bool(_URI.match(s)),
    "uri-reference": lambda s: bool(_URI_REF.match(s)),
    "uri-template": lambda s: bool(_URI_TEMPLATE.match(s)),
    "url": lambda s: bool(_URL.match(s)),
    "email": lambda s: bool(_EMAIL.match(s)),
    "hostname": lambda s: bool(_HOSTNAME.match(s)),
    "ipv4": lambda s: bool(_IPV4.match(s)),
    "ipv6": _is_ipv6,
    "regex": _is_regex,
    "uuid": lambda s: bool(_UUID.match(s)),
    "json-pointer": lambda s: bool(_JSON_POINTER.match(s)),
    "json-pointer-uri-fragment": lambda s: s.startswith("#") and bool(_JSON_POINTER.match(unquote(s[1:]))),
    "relative-json-pointer": lambda s: bool(_REL_JSON_POINTER.match(s)),
    "byte": lambda s: bool(_BYTE.match(s)),
}
NUMBER_FORMATS: dict[str, Callable[[Any], bool]] = {
    "int32": lambda n: isinstance(n, int) and -(2**31) <= n <= 2**31 - 1,
    "int64": lambda n: isinstance(n, int),
    "float": lambda n: True,
    "double": lambda n: True,
}
