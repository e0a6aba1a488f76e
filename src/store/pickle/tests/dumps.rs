//! What `dumps` writes, and that `loads` reads it back.

use super::vectors::*;
use super::*;

#[test]
fn dumps_writes_cpythons_opcodes_without_memo() {
    // Python read this back (`pickle.loads(bytes) == FLAT`): it is its own pickle.
    assert_eq!(dumps(&flat_value()), hex(FLAT_P5_NO_MEMO));
    // Small values, each checked with python3: pickle.loads(bytes) is the value.
    let cases: Vec<(PyValue, &str)> = vec![
        (PyValue::None, "8005 4e 2e"),
        (PyValue::Bool(true), "8005 88 2e"),
        (int(-1), "8005 4a ffffffff 2e"),
        (int(255), "8005 4b ff 2e"),
        (int(256), "8005 4d 0001 2e"),
        (int(65536), "8005 4a 00000100 2e"),
        (int(-2_147_483_649), "8005 8a 05 ff ffff7fff 2e"),
        (int(i64::MIN), "8005 8a 08 0000000000000080 2e"),
        (
            big("9223372036854775808"),
            "8005 8a 09 000000000000008000 2e",
        ),
        (
            big("-9223372036854775809"),
            "8005 8a 09 ffffffffffffff7fff 2e",
        ),
        (PyValue::Float(f64::NAN), "8005 47 7ff8000000000000 2e"),
        (PyValue::Float(-0.0), "8005 47 8000000000000000 2e"),
        (s("é"), "8005 8c 02 c3a9 2e"),
        (list(vec![]), "8005 5d 2e"),
        (list(vec![int(1)]), "8005 5d 4b01 61 2e"),
        (list(vec![int(1), int(2)]), "8005 5d 28 4b01 4b02 65 2e"),
        (d(vec![]), "8005 7d 2e"),
        (d(vec![("a", PyValue::None)]), "8005 7d 8c0161 4e 73 2e"),
        (
            d(vec![("a", PyValue::None), ("b", PyValue::Bool(false))]),
            "8005 7d 28 8c0161 4e 8c0162 89 75 2e",
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(dumps(&value), hex(expected), "{value:?}");
    }
    // 256 bytes and more: BINUNICODE.
    let long = dumps(&s(&"é".repeat(128)));
    assert_eq!(&long[..7], &hex("8005 58 00010000")[..]);
    // CPython writes SETITEMS batches of 1000, and after a full batch an empty one.
    let dict = |n: usize| PyValue::Dict((0..n).map(|i| (i.to_string(), PyValue::None)).collect());
    let count = |bytes: &[u8], op: u8| bytes.iter().filter(|&&b| b == op).count();
    assert_eq!(count(&dumps(&dict(1000)), b'u'), 2);
    assert_eq!(count(&dumps(&dict(1001)), b'u'), 2);
    assert_eq!(count(&dumps(&dict(2500)), b'u'), 3);
    assert_eq!(count(&dumps(&list(vec![PyValue::None; 2000])), b'e'), 2);
    assert_eq!(count(&dumps(&list(vec![PyValue::None; 2001])), b'e'), 3);
}

#[test]
fn dumps_then_loads_is_the_same_value() {
    let mut values = vec![session_value(), flat_value()];
    for i in [
        0,
        1,
        -1,
        127,
        128,
        255,
        256,
        -128,
        -129,
        65535,
        65536,
        i64::MAX,
        i64::MIN,
    ] {
        values.push(int(i));
        values.push(int(i.wrapping_mul(3)));
    }
    for digits in [
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
    ] {
        values.push(big(digits));
    }
    values.push(big(&"7".repeat(4300)));
    values.push(big(&format!("-{}", "1".repeat(700))));
    for bits in [
        0x7ff8_0000_0000_0001,
        0xfff0_0000_0000_0000,
        0x8000_0000_0000_0000,
        1,
    ] {
        values.push(f(bits));
    }
    values.push(s(&"😀".repeat(100)));
    values.push(PyValue::Dict(
        (0..2001).map(|i| (format!("k{i}"), int(i))).collect(),
    ));
    for value in values {
        let bytes = dumps(&value);
        let back = loads(&bytes).unwrap_or_else(|e| panic!("{value:?}: {e}"));
        assert!(back.identical(&value), "{value:?}");
    }
    // A BigInt that is not decimal text is written so that Python refuses it.
    let bad = dumps(&big("12x"));
    assert_eq!(bad, b"\x80\x05L12xL\n.");
    assert!(loads(&bad).is_err());
}
