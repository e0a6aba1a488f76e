//! Python's pickles read as Python reads them.

use super::vectors::*;
use super::*;

#[test]
fn reads_python_session_pickles_of_every_protocol() {
    let expected = session_value();
    for text in [SESSION_P0, SESSION_P2, SESSION_P4, SESSION_P5] {
        let bytes = hex(text);
        let value = loads(&bytes).unwrap();
        assert!(value.identical(&expected), "{value:?}");
        let PyValue::Dict(items) = expected.clone() else {
            unreachable!()
        };
        let read = loads_dict(&bytes).unwrap();
        assert!(PyValue::Dict(read).identical(&PyValue::Dict(items)));
    }
    assert!(
        loads(&hex(FLAT_P5_NO_MEMO))
            .unwrap()
            .identical(&flat_value())
    );
}

#[test]
fn shared_references_are_one_object() {
    let x = || list(vec![int(1), int(2)]);
    let shared = d(vec![
        ("a", x()),
        ("b", x()),
        ("c", list(vec![x(), list(vec![x()])])),
    ]);
    for text in [SHARED_P5, SHARED_P2, SHARED_P0] {
        assert_eq!(loads(&hex(text)).unwrap(), shared);
    }
    let text = s("shared string");
    let expected = list(vec![
        text.clone(),
        text,
        d(vec![("shared string", s("shared string"))]),
    ]);
    assert_eq!(loads(&hex(SHARED_STR_P5)).unwrap(), expected);
    // GETs of a list before APPENDS fills it: both references see [1, 2].
    let later = b"]\x94(h\x00h\x00lq\x010(K\x01K\x02e0h\x01.";
    assert_eq!(loads(later).unwrap(), list(vec![x(), x()]));
}

#[test]
fn reads_python_batches_and_memo_indexes_beyond_a_byte() {
    // {f"k{i}": None for i in range(1001)}: MARK, 1000 items, SETITEMS, MARK, 1, SETITEMS.
    let mut body = b"}\x94(".to_vec();
    for i in 0..1001 {
        let key = format!("k{i}");
        body.extend_from_slice(&[0x8c, key.len() as u8]);
        body.extend_from_slice(key.as_bytes());
        body.extend_from_slice(b"\x94N");
        if i == 999 {
            body.extend_from_slice(b"u(");
        }
    }
    body.extend_from_slice(b"u.");
    let bytes = framed(&body);
    assert_eq!(sha256_hex(&bytes), DICT1001_P5_SHA256);
    let items = loads_dict(&bytes).unwrap();
    assert_eq!(items.len(), 1001);
    assert_eq!(items[1000], ("k1000".into(), PyValue::None));

    // [None] * 2500: APPENDS of 1000, 1000 and 500.
    let mut body = b"]\x94".to_vec();
    for n in [1000, 1000, 500] {
        body.push(b'(');
        body.extend(std::iter::repeat_n(b'N', n));
        body.push(b'e');
    }
    body.push(b'.');
    let bytes = framed(&body);
    assert_eq!(sha256_hex(&bytes), LIST2500_P5_SHA256);
    assert_eq!(loads(&bytes).unwrap(), list(vec![PyValue::None; 2500]));

    // m = [chr(0x100 + i) for i in range(300)]; m.append(m[-1]): a LONG_BINGET of 300.
    let mut body = b"]\x94(".to_vec();
    let strs: Vec<String> = (0..300)
        .map(|i| char::from_u32(0x100 + i).unwrap().to_string())
        .collect();
    for text in &strs {
        body.extend_from_slice(&[0x8c, 2]);
        body.extend_from_slice(text.as_bytes());
        body.push(0x94);
    }
    body.extend_from_slice(b"j\x2c\x01\x00\x00e.");
    let bytes = framed(&body);
    assert_eq!(sha256_hex(&bytes), MEMO300_P5_SHA256);
    let mut expected: Vec<PyValue> = strs.iter().map(|t| s(t)).collect();
    expected.push(s(&strs[299]));
    assert_eq!(loads(&bytes).unwrap(), list(expected));
}

#[test]
fn reads_long4_ints() {
    let value = loads(&hex(LONG4_P2)).unwrap();
    assert_eq!(json_of(&value), LONG4_JSON);
    assert_eq!(loads(&dumps(&value)).unwrap(), value);
    // dumps writes the same LONG4 argument as Python.
    let ours = dumps(&value);
    let PyValue::List(items) = &value else {
        unreachable!()
    };
    let one = dumps(&items[0]);
    assert_eq!(one[2], 0x8b);
    let python = hex(LONG4_P2);
    let arg = &one[2..one.len() - 1];
    assert!(python.windows(arg.len()).any(|w| w == arg));
    assert!(ours.windows(arg.len()).any(|w| w == arg));
}

#[test]
fn reads_each_data_opcode_as_python() {
    let nan_payload = f64::from_bits(0x7ff8_0000_0000_0001);
    let cases: Vec<(&[u8], PyValue)> = vec![
        (b"I01\n.", PyValue::Bool(true)),
        (b"I00\n.", PyValue::Bool(false)),
        (b"I-0\n.", PyValue::Bool(false)),
        (b"I0\n.", int(0)),
        (b"I42\n.", int(42)),
        (b"I-2147483649\n.", int(-2_147_483_649)),
        (
            b"I123456789012345678901234567890\n.",
            big("123456789012345678901234567890"),
        ),
        (b"L0L\n.", int(0)),
        (b"L-0L\n.", int(0)),
        (b"L5\n.", int(5)),
        (b"L-9223372036854775809L\n.", big("-9223372036854775809")),
        (b"L18446744073709551615L\n.", big("18446744073709551615")),
        (b"F0.1\n.", PyValue::Float(0.1)),
        (b"F-0.0\n.", PyValue::Float(-0.0)),
        (b"Fnan\n.", PyValue::Float(f64::NAN)),
        (b"Finf\n.", PyValue::Float(f64::INFINITY)),
        (b"F-inf\n.", PyValue::Float(f64::NEG_INFINITY)),
        (b"F1e+16\n.", PyValue::Float(1e16)),
        (b"F5e-324\n.", PyValue::Float(5e-324)),
        (b"F1e-400\n.", PyValue::Float(0.0)),
        (b"V\\u00e9\\\\u0041\\x\\U0001f600\n.", s("é\\\\u0041\\x😀")),
        (b"Vab\\\n.", s("ab\\")),
        (b"V\xe9\xff\n.", s("éÿ")),
        (b"V\n.", s("")),
        (b"\x80\x02N\x8a\x00.", int(0)),
        (b"\x8a\x01\xff.", int(-1)),
        (b"\x8a\x02\x00\x80.", int(-32768)),
        (
            b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00.",
            big("9223372036854775808"),
        ),
        (
            b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\xff.",
            int(i64::MIN),
        ),
        (b"\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80.", int(i64::MIN)),
        (
            b"\x8a\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff.",
            int(-1),
        ),
        (b"\x8a\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00.", int(0)),
        (
            b"\x8b\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01.",
            big("18446744073709551616"),
        ),
        (b"\x8b\x00\x00\x00\x00.", int(0)),
        (b"J\xff\xff\xff\xff.", int(-1)),
        (b"M\xff\xff.", int(65535)),
        (b"K\x07.", int(7)),
        (
            b"G\x7f\xf8\x00\x00\x00\x00\x00\x01.",
            PyValue::Float(nan_payload),
        ),
        (
            b"G\xff\xf0\x00\x00\x00\x00\x00\x00.",
            PyValue::Float(f64::NEG_INFINITY),
        ),
        (b"\x8d\x02\x00\x00\x00\x00\x00\x00\x00hi.", s("hi")),
        (b"X\x00\x00\x00\x00.", s("")),
        (b"\x8c\x04\xf0\x9f\x98\x80.", s("😀")),
        (b"(K\x01K\x02K\x03t.", list(vec![int(1), int(2), int(3)])),
        (b"(t.", list(vec![])),
        (b")\x85.", list(vec![list(vec![])])),
        (b"K\x01K\x02\x86.", list(vec![int(1), int(2)])),
        (b"K\x01K\x02K\x03\x87.", list(vec![int(1), int(2), int(3)])),
        (b"(K\x01\x85.", list(vec![int(1)])),
        (b"(K\x01l.", list(vec![int(1)])),
        (
            b"(\x8c\x01aK\x01\x8c\x01bK\x02d.",
            d(vec![("a", int(1)), ("b", int(2))]),
        ),
        (b"(\x8c\x01aK\x01\x8c\x01aK\x02d.", d(vec![("a", int(2))])),
        (
            b"}\x8c\x01aK\x01s\x8c\x01bK\x02s\x8c\x01aK\x03s.",
            d(vec![("a", int(3)), ("b", int(2))]),
        ),
        (b"]K\x01aK\x02a.", list(vec![int(1), int(2)])),
        (b"](K\x01K\x02e(e.", list(vec![int(1), int(2)])),
        (b"K\x01K\x020.", int(1)),
        (b"K\x01(K\x02K\x031.", int(1)),
        (b"K\x01(0.", int(1)),
        (b"K\x012\x86.", list(vec![int(1), int(1)])),
        (b"Np0\n0g0\n.", PyValue::None),
        (b"Nq\x000h\x00.", PyValue::None),
        (b"Nr\x00\x01\x00\x000j\x00\x01\x00\x00.", PyValue::None),
        (b"N\x940h\x00.", PyValue::None),
        (b"Np7\n\x94h\x01.", PyValue::None),
        // Python ignores what follows STOP.
        (b"N.trailing garbage \x00\xff", PyValue::None),
        (
            b"\x80\x05\x95\x01\x00\x00\x00\x00\x00\x00\x00N.",
            PyValue::None,
        ),
        (
            b"\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00K\x01.",
            int(1),
        ),
        (b"\x80\x00N.", PyValue::None),
        (b"\x80\x05\x80\x02N.", PyValue::None),
    ];
    for (bytes, expected) in cases {
        let value = loads(bytes).unwrap_or_else(|e| panic!("{bytes:?}: {e}"));
        assert!(value.identical(&expected), "{bytes:?}: {value:?}");
    }
    // A dict of many keys (indexed) keeps Python's order on repeated keys.
    let mut bytes = b"}(".to_vec();
    for i in 0..40 {
        bytes.extend_from_slice(&[0x8c, 1, b'a' + (i % 20) as u8, b'K', i as u8]);
    }
    bytes.extend_from_slice(b"u.");
    let PyValue::Dict(items) = loads(&bytes).unwrap() else {
        panic!("not a dict")
    };
    assert_eq!(items.len(), 20);
    assert_eq!(items[0], ("a".into(), int(20)));
    assert_eq!(items[19], ("t".into(), int(39)));
}
