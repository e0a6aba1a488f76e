#!/usr/bin/env python3
"""Writes the hand-made seeds of the fuzz corpus (fuzz/corpus/<target>/seed-*).

Signed values are computed here independently of the crate, with Django's algorithm
(TimestampSigner: HMAC-SHA256 keyed on SHA256(salt + "signer" + secret), URL-safe base64
without padding, base62 timestamps); the first ones are values Django's own `signing.dumps`
wrote, checked against them below. Run from the repository root:
`python3 fuzz/make_seeds.py`. Files the fuzzer added are left alone.
"""

import base64
import hashlib
import hmac
import json
import os
import zlib

SECRET = "django_tests_secret_key"
COOKIE_SALT = "django.contrib.sessions.backends.signed_cookies"
STORE_SALT = "django.contrib.sessions.SessionStore"
T = 1_700_000_000
FUTURE = 4_000_000_000  # loads under the default two-week cookie age until 2096
KNOWN_KEY = "abcdefgh12345678"  # the session the cookie_parsing target's memory store holds
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b62(n: int) -> str:
    if n == 0:
        return "0"
    sign, n = ("-", -n) if n < 0 else ("", n)
    out = ""
    while n:
        n, d = divmod(n, 62)
        out = ALPHABET[d] + out
    return sign + out


def sign(value: str, ts: int, salt: str = COOKIE_SALT, secret: str = SECRET, stamp=None) -> str:
    key = hashlib.sha256((salt + "signer" + secret).encode()).digest()
    signed = f"{value}:{b62(ts) if stamp is None else stamp}"
    mac = hmac.new(key, signed.encode(), hashlib.sha256).digest()
    return f"{signed}:{b64(mac)}"


def payload(obj, compress=True) -> str:
    text = json.dumps(obj, separators=(",", ":")).encode()
    if compress:
        z = zlib.compress(text)
        if len(z) < len(text) - 1:
            return "." + b64(z)
    return b64(text)


def dumps(obj, ts=T, salt=COOKIE_SALT, secret=SECRET, compress=True) -> str:
    return sign(payload(obj, compress), ts, salt, secret)


# Django's own vectors; compressed ones come from Django's zlib.
HELLO = "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:D7br0mU4xl7_pVmn8oQP-46zTk7_-k7T0N1hmLtBPNc"
EMPTY = "e30:1r31eq:bm9Z9NUl34o8o-n4aaAkHGlR-ZM2VBuyjHK9uxlDPWY"
THIRTY = ".eJwNy7sNgDAQRMFeHL_Au_7cmVYQgetA9I7TkeYtu1x3RZhGZzAJkoUOChk11NFAEwVKtHDF5xg33PHAEwdOvJ7vBwQtEZE:1r31eq:ktB1bT7J8YBAfxrYUXYy0H6cliM1BhjASNPoFXsL4_o"
STORE_HELLO = "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:tWy-azdqKYIwu_o6Ht3nBxc5SvPyROA4n-zKWAcm4Cc"
STORE_THIRTY = ".eJwNy7sNgDAQRMFeHL_Au_7cmVYQgetA9I7TkeYtu1x3RZhGZzAJkoUOChk11NFAEwVKtHDF5xg33PHAEwdOvJ7vBwQtEZE:1r31eq:ykjX_84uu4XkzFYXUAkIc9ST41QvhzvyUwetrOpR-3s"
STORE_MIXED = "eyJfc2Vzc2lvbl9leHBpcnkiOjM2MDAsIngiOjEsImIiOlt0cnVlLG51bGwsMS41LCJzIl19:1r31eq:opcHBwjhRlg3kOBf_3rhK5AEPTHITbaUDrhnXGtDzWI"
STORE_ACCENTS = "eyJrIjoiXHUwMGU5XHUyMGFjIn0:1r31eq:0ExxXUKtMkTj_iniYupmOFYRrH8mauPT3u-H92ZseP4"
STORE_JUNK = "b'invalid data':1r31eq:Wu-C_6_Pyb3z0NiQ50o0gsctmss0MFrIyFIN3kTJdTY"
NO_SEPARATOR = "Zmxhc2tkajphbGtkamY="
BAD = "bad:encoded:value"

assert dumps({"hello": "world"}) == HELLO
assert dumps({}) == EMPTY
assert sign(THIRTY.rsplit(":", 2)[0], T) == THIRTY
assert dumps({"hello": "world"}, salt=STORE_SALT) == STORE_HELLO
assert sign(STORE_THIRTY.rsplit(":", 2)[0], T, STORE_SALT) == STORE_THIRTY
assert dumps({"_session_expiry": 3600, "x": 1, "b": [True, None, 1.5, "s"]}, salt=STORE_SALT) == STORE_MIXED
assert dumps({"k": "é€"}, salt=STORE_SALT) == STORE_ACCENTS
assert sign("b'invalid data'", T, STORE_SALT) == STORE_JUNK

# Cookie-salted values that reach every branch of CookieStore::open.
COOKIE_VALUES = {
    "django-hello": HELLO,
    "django-empty": EMPTY,
    "django-thirty-compressed": THIRTY,
    "future-hello": dumps({"hello": "world", "user": 1}, FUTURE),
    "future-custom-expiry": dumps({"_session_expiry": 3600, "user": 1}, FUTURE),
    "future-expiry-at": dumps({"_session_expiry": "2096-10-02T07:06:40+00:00"}, FUTURE),
    "future-browser-close": dumps({"_session_expiry": 0}, FUTURE),
    "future-bad-expiry": dumps({"_session_expiry": "soon"}, FUTURE),
    "future-expiry-i64-max": dumps({"_session_expiry": 2**63 - 1}, FUTURE),
    "future-expiry-i64-min": dumps({"_session_expiry": -(2**63)}, FUTURE),
    "future-expiry-u64-max": dumps({"_session_expiry": 2**64 - 1}, FUTURE),
    "future-expiry-huge-float": dumps({"_session_expiry": 1e300}, FUTURE),
    "future-expiry-tiny-float": dumps({"_session_expiry": 1e-300}, FUTURE),
    "future-expiry-far-date": dumps({"_session_expiry": "9999-12-31T23:59:59.999999-23:59"}, FUTURE),
    "future-expiry-zulu": dumps({"_session_expiry": "2096-10-02T07:06:40Z"}, FUTURE),
    "future-expiry-list": dumps({"_session_expiry": [3600]}, FUTURE),
    "custom-expiry-passed": dumps({"_session_expiry": 60}),
    "expired-epoch": dumps({}, 0),
    "negative-timestamp": dumps({}, -61),
    "not-an-object": sign(b64(b"[1,2]"), T),
    "junk-payload": sign("b'invalid data'", T),
    "bad-zlib": sign("." + b64(b"not zlib at all"), T),
    "bad-timestamp": sign("e30", T, stamp="1r31e!"),
    "huge-timestamp": sign("e30", T, stamp="zzzzzzzzzzzz"),
    "wrong-salt": STORE_HELLO,
    "wrong-secret": dumps({"hello": "world"}, secret="another secret"),
    "tampered": "eyJoZWxsbyI6Indvcmxk2In0:1r31eq:D7br0mU4xl7_pVmn8oQP-46zTk7_-k7T0N1hmLtBPNc",
    "truncated": HELLO[:-1],
    "padded-signature": HELLO + "=",
    "two-colons": "::",
    "bad": BAD,
    "no-separator": NO_SEPARATOR,
}

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target: str, name: str, data) -> None:
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(directory, f"seed-{name}"), "wb") as f:
        f.write(data)


def cookie_parsing() -> None:
    seeds = {
        "known": f"sessionid={KNOWN_KEY}",
        "known-quoted": f'sessionid="{KNOWN_KEY}"',
        "known-spaces": f"  sessionid = {KNOWN_KEY} ;",
        "browser": f"_ga=GA1.1.1234567890.1700000000; csrftoken=Xk3vQ9mLrT2pWz8sYd4fHj6nBc1aKe5u; sessionid={KNOWN_KEY}; django_language=en",
        "unknown": "sessionid=zzzzzzzz99999999zzzzzzzz99999999",
        "duplicate": f"sessionid={KNOWN_KEY}; sessionid=zzzzzzzz99999999",
        "duplicate-same": f"sessionid={KNOWN_KEY}; sessionid={KNOWN_KEY}",
        "empty-value": "sessionid=",
        "no-equals": "sessionid",
        "empty-name": "=abcdefgh12345678",
        "other-case": f"SessionId={KNOWN_KEY}",
        "uppercase-key": "sessionid=ABCDEFGH12345678",
        "too-short": "sessionid=abc1234",
        "too-long": "sessionid=" + "a" * 41,
        "traversal": "sessionid=../../../etc/passwd",
        "only-separators": ";;;=;=;",
        "obs-text": b"sessionid=abcdefgh\xe9\xff12345678; x=\x80",
        "tab": f"sessionid=\t{KNOWN_KEY}\t",
        "signed-hello": f"sessionid={HELLO}",
        "signed-thirty": f"csrftoken=abc; sessionid={THIRTY}",
        "signed-future": f"sessionid={COOKIE_VALUES['future-hello']}",
        "signed-custom-expiry": f"sessionid={COOKIE_VALUES['future-custom-expiry']}",
        "signed-bad-expiry": f"sessionid={COOKIE_VALUES['future-bad-expiry']}",
        "signed-quoted": f'sessionid="{EMPTY}"',
        "signed-tampered": f"sessionid={COOKIE_VALUES['tampered']}",
        "signed-and-key": f"sessionid={HELLO}; sessionid={KNOWN_KEY}",
        "headers-two": f"csrftoken=abc\nsessionid={KNOWN_KEY}",
        "headers-duplicate": f"sessionid={KNOWN_KEY}\nsessionid={HELLO}",
        "headers-broken": f"sessionid={KNOWN_KEY}\n\x00bad\nsessionid=",
        "oversized": "sessionid=" + "a:" * 2100,
    }
    for name, data in seeds.items():
        write("cookie_parsing", name, data)


def key_validation() -> None:
    seeds = {
        "known": KNOWN_KEY,
        "generated": "k3v9mlrt2pwz8syd4fhj6nbc1ake5u0q",
        "min": "abcd1234",
        "max": "a" * 40,
        "too-short": "abcd123",
        "too-long": "a" * 41,
        "empty": "",
        "uppercase": "ABCDEFGH12345678",
        "slash": "abcdefgh/",
        "dot": "abc.defgh",
        "newline": "abcdefgh\n",
        "accent": "abcdéfghi",
        "quotes": "a'b\"cdefgh",
        "fullwidth-digit": "abcdefgh１２",
        "invalid-utf8": b"abcdefgh\xff\xfe",
        "signed-hello": HELLO,
        "signed-thirty": THIRTY,
        "one-colon": "abc:def",
        "two-colons": "::",
        "cookie-space": "e30:1r31eq: bm9Z",
        "cookie-4096": "a:b:" + "c" * 4092,
    }
    for name, data in seeds.items():
        write("key_validation", name, data)


def signed_value_decoding() -> None:
    for name, value in COOKIE_VALUES.items():
        write("signed_value_decoding", name, value)
    # Payloads alone, for decode_payload.
    write("signed_value_decoding", "payload-hello", "eyJoZWxsbyI6IndvcmxkIn0")
    write("signed_value_decoding", "payload-empty", "e30")
    write("signed_value_decoding", "payload-thirty", THIRTY.split(":")[0])
    write("signed_value_decoding", "payload-padded", b64(b'{"a":1}') + "==")
    write("signed_value_decoding", "payload-floats", payload({"f": 1.5e-300, "g": -0.0, "h": 1e308}, False))
    write("signed_value_decoding", "payload-unicode", b64('{"emoji":"\\ud83d\\ude00","raw":"é"}'.encode()))
    write("signed_value_decoding", "payload-lone-surrogate", b64(b'{"s":"\\ud800"}'))
    write("signed_value_decoding", "payload-deep", b64(b'{"a":' + b"[" * 200 + b"]" * 200 + b"}"))


def record_decoding() -> None:
    seeds = {
        "empty": "{}",
        "hello": '{"hello":"world"}',
        "mixed": '{"_session_expiry":3600,"x":1,"b":[true,null,1.5,"s"]}',
        "escaped": '{"k":"\\u00e9\\u20ac","emoji":"\\ud83d\\ude00","nl":"a\\nb","q":"\\"\\\\/"}',
        "raw-unicode": '{"k":"é€😀"}',
        "numbers": '{"u":18446744073709551615,"i":-9223372036854775808,"f":1.2345678901234567e-300,"z":-0.0,"e":1E+2}',
        "nested": '{"a":{"b":{"c":[[],{},[{"d":null}]]}}}',
        "duplicate-keys": '{"a":1,"b":2,"a":3}',
        "whitespace": ' \n{ "a" : [ 1 , 2 ] }\t',
        "array": "[1,2]",
        "string": '"str"',
        "trailing": '{"a":1} x',
        "deep": '{"a":' + "[" * 130 + "]" * 130 + "}",
        "lone-surrogate": '{"s":"\\ud800"}',
        "django-hello": STORE_HELLO,
        "django-thirty": STORE_THIRTY,
        "django-mixed": STORE_MIXED,
        "django-accents": STORE_ACCENTS,
        "django-junk": STORE_JUNK,
        "no-separator": NO_SEPARATOR,
        "bad": BAD,
        # Signed with the target's codec secret "k", so the signed branch decodes.
        "k-user": dumps({"user": 1}, salt=STORE_SALT, secret="k"),
        "k-compressed": dumps({"a": list(range(30))}, salt=STORE_SALT, secret="k"),
        "k-not-object": sign(b64(b"[1,2]"), T, STORE_SALT, "k"),
        "k-cookie-salt": dumps({"user": 1}, secret="k"),
    }
    for name, data in seeds.items():
        write("record_decoding", name, data)


if __name__ == "__main__":
    cookie_parsing()
    key_validation()
    signed_value_decoding()
    record_decoding()
