"""Seeds for fuzz/corpus/pickle_decoding and fuzz/corpus/django_json_parsing (CPython's own output)."""
import datetime, json, math, os, pickle, sys, uuid
nan, inf = float('nan'), float('inf')
SESSION = {
    '_auth_user_id': '42', '_auth_user_backend': 'django.contrib.auth.backends.ModelBackend',
    '_auth_user_hash': 'c0ffee' * 10, '_session_expiry': 1209600,
    'ints': [0, 1, 255, 256, 65535, 65536, -1, 2**31, -2**31 - 1, 2**63 - 1, -2**63],
    'big': [2**70, -2**64, 2**63, uuid.UUID('12345678-1234-5678-1234-567812345678').int],
    'floats': [0.1, 1e16, -0.0, nan, inf, -inf, 5e-324],
    'nested': {'list': [1, [2, [3, []]], {}], 'tuple': (1, 'two', 3.0), 't1': (None,), 't0': ()},
    'text': 'héllo 😀 \u2028', 'ctl': '\x00\n\\"', 'flags': [True, False, None], 'long': 'x' * 300,
}
def write(target, name, data):
    d = f'fuzz/corpus/{target}'
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f'seed-{name}'), 'wb') as f:
        f.write(data)
x = [1, 2]
r = []; r.append(r)
pickles = {f'session-p{p}': pickle.dumps(SESSION, p) for p in range(6)}
pickles.update({
    'shared': pickle.dumps({'a': x, 'b': x, 'c': (x,)}, 5),
    'shared-p0': pickle.dumps({'a': x, 'b': x}, 0),
    'recursive': pickle.dumps(r, 5),
    'datetime': pickle.dumps({'when': datetime.datetime(2024, 1, 1)}, 5),
    'set': pickle.dumps({1, 2}, 5),
    'bytes': pickle.dumps(b'abc', 5),
    'long4': pickle.dumps([2**2048, -2**2048], 2),
    'memo-long': pickle.dumps([s := chr(0x100 + i) for i in range(260)] + [s], 5),
    'dict-20': pickle.dumps({f'k{i % 20}': i for i in range(20)}, 4),
    'empty-dict': pickle.dumps({}, 5),
    'hand-ops': b'(I01\nI-0\nL5L\nF0.1\nV\\u00e9\\U0001f600\nJ\xff\xff\xff\xffM\xff\xff\x8a\x01\xff)2\x85tq\x00](h\x00h\x00e.',
})
for name, data in pickles.items():
    write('pickle_decoding', name, data)
D = lambda v: json.dumps(v, separators=(',', ':')).encode()
deep = 0
for _ in range(126): deep = [deep]
texts = {
    'session': D({k: (list(v) if isinstance(v, tuple) else v) for k, v in SESSION.items() if k != 'nested'}),
    'numbers': D([0, -1, 2**64, -2**70, 10**30, 0.1, 1e16, 1e-05, -0.0, nan, inf, -inf, 5e-324, 1.7976931348623157e308]),
    'strings': D(['', 'é', '😀', '\x00\x1f\x7f', '"\\/\n\r\t\b\f', '\U0010ffff']),
    'indented': json.dumps({'a': [1, {'b': None}], 'c': 'é'}, indent=2, ensure_ascii=False).encode(),
    'duplicates': b'{"a":1,"b":2,"a":{"c":[]}}',
    'deep': D({'d': deep}),
    'escapes': b'"\\u00E9\\ud83d\\ude00\\/\\b"',
    'lone-surrogate': b'["\\ud800"]',
    'exponents': b'[1E5,1e+5,1e-5,0.5e1,1e400,-1e400,123456789012345678901234567890]',
}
for name, data in texts.items():
    json.loads(data)
    write('django_json_parsing', name, data)
