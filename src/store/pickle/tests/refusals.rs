//! What is refused: classes and callables, types a session cannot hold, recursion,
//! truncation, malformed opcodes and the limits.

use super::vectors::*;
use super::*;
use crate::store::python::MAX_DEPTH;

#[test]
fn refuses_pickles_that_need_a_class_or_callable() {
    for (text, opcode) in [
        (DATETIME_P5, "STACK_GLOBAL"),
        (DATETIME_P2, "GLOBAL"),
        (DATETIME_P0, "GLOBAL"),
        (INSTANCE_P5, "STACK_GLOBAL"),
        (INSTANCE_P0, "GLOBAL"),
        (OS_SYSTEM_P5, "STACK_GLOBAL"),
        (OS_SYSTEM_P0, "GLOBAL"),
        (SET_P2, "GLOBAL"),
    ] {
        assert_eq!(loads(&hex(text)), Err(PickleError::NeedsCallable(opcode)));
    }
    // Each opcode that would call or build something, even with its arguments at hand.
    for (bytes, opcode) in [
        (&b"N)R."[..], "REDUCE"),
        (b"}}b.", "BUILD"),
        (b"(ios\nsystem\n.", "INST"),
        (b"(No.", "OBJ"),
        (b"N)\x81.", "NEWOBJ"),
        (b"N)}\x92.", "NEWOBJ_EX"),
        (b"\x82\x01.", "EXT1"),
        (b"\x83\x01\x00.", "EXT2"),
        (b"\x84\x01\x00\x00\x00.", "EXT4"),
        (b"P1\n.", "PERSID"),
        (b"NQ.", "BINPERSID"),
    ] {
        assert_eq!(loads(bytes), Err(PickleError::NeedsCallable(opcode)));
    }
    assert_eq!(
        loads(&hex(OS_SYSTEM_P0)).unwrap_err().to_string(),
        "pickle needs a class or callable (opcode GLOBAL): refused"
    );
}

#[test]
fn refuses_types_a_session_cannot_hold() {
    for (text, opcode) in [
        (SET_P5, "EMPTY_SET"),
        (FROZENSET_P5, "FROZENSET"),
        (BYTES_P5, "SHORT_BINBYTES"),
        (BYTES_P3, "SHORT_BINBYTES"),
        (BYTEARRAY_P5, "BYTEARRAY8"),
    ] {
        let error = loads(&hex(text)).unwrap_err();
        assert!(
            matches!(error, PickleError::UnsupportedType { opcode: o, .. } if o == opcode),
            "{error}"
        );
    }
    for (bytes, opcode) in [
        (&b"B\x01\x00\x00\x00x."[..], "BINBYTES"),
        (b"\x8e\x01\x00\x00\x00\x00\x00\x00\x00x.", "BINBYTES8"),
        (b"\x8f(K\x01\x90.", "EMPTY_SET"),
        (b"S'abc'\n.", "STRING"),
        (b"T\x03\x00\x00\x00abc.", "BINSTRING"),
        (b"U\x03abc.", "SHORT_BINSTRING"),
        (b"\x97.", "NEXT_BUFFER"),
        (b"N\x98.", "READONLY_BUFFER"),
    ] {
        let error = loads(bytes).unwrap_err();
        assert!(
            matches!(error, PickleError::UnsupportedType { opcode: o, .. } if o == opcode),
            "{bytes:?}: {error}"
        );
    }
    assert_eq!(
        loads(&hex(BYTES_P5)).unwrap_err().to_string(),
        "pickle holds bytes (opcode SHORT_BINBYTES), which a session cannot hold: refused"
    );
    assert_refused(&hex(INT_KEY_P5), "dict key is a int, not a str");
    assert_refused(&hex(TUPLE_KEY_P5), "dict key is a tuple, not a str");
    assert_refused(b"}N\x8c\x01as.", "dict key is a None");
    // A str Python would read with a lone surrogate ('surrogatepass').
    assert_eq!(
        loads(b"X\x03\x00\x00\x00\xed\xa0\x80."),
        Err(PickleError::LoneSurrogate)
    );
    assert_eq!(
        loads(b"V\\ud83d\\ude00\n."),
        Err(PickleError::LoneSurrogate)
    );
    assert_eq!(
        loads(b"\x8c\x06\xed\xa0\xbd\xed\xb8\x80."),
        Err(PickleError::LoneSurrogate)
    );
}

#[test]
fn refuses_recursive_structures() {
    for text in [
        RECURSIVE_LIST_P5,
        RECURSIVE_LIST_P0,
        RECURSIVE_DICT_P5,
        RECURSIVE_TUPLE_P2,
    ] {
        assert_eq!(loads(&hex(text)), Err(PickleError::Recursive));
    }
    // x = [1, x]
    assert_eq!(
        loads(b"\x80\x02]q\x00(K\x01h\x00e."),
        Err(PickleError::Recursive)
    );
}

#[test]
fn every_prefix_is_a_truncated_pickle() {
    for text in [SESSION_P0, SESSION_P2, SESSION_P5] {
        let bytes = hex(text);
        for end in 0..bytes.len() {
            assert_eq!(loads(&bytes[..end]), Err(PickleError::Truncated), "{end}");
        }
    }
    assert_eq!(loads(b"").unwrap_err().to_string(), "truncated pickle");
}

#[test]
fn refuses_what_python_refuses() {
    for (bytes, message) in [
        (&b""[..], "truncated pickle"),
        (b"N", "truncated pickle"),
        (b"\x80\x06N.", "unsupported pickle protocol: 6"),
        (b"(.", "unexpected MARK found"),
        (b"0.", "unpickling stack underflow"),
        (b"1.", "could not find MARK"),
        (b"2.", "unpickling stack underflow"),
        (b"(N1.", "unpickling stack underflow"),
        (b"a.", "unpickling stack underflow"),
        (b"NN(a.", "unexpected MARK found"),
        (b"K\x01(K\x02e.", "APPEND to a int"),
        (b")K\x01a.", "APPEND to a tuple"),
        (b"\x8c\x01a\x8c\x01ba.", "APPEND to a str"),
        (b"}K\x01s.", "unpickling stack underflow"),
        (b"(K\x01d.", "odd number of items for DICT"),
        (b"}(K\x01u.", "odd number of items for SETITEMS"),
        (b"g5\n.", "memo value not found at index 5"),
        (b"h\x00.", "memo value not found at index 0"),
        (b"Np-1\n.", "negative PUT argument"),
        (b"p0\n.", "unpickling stack underflow"),
        (b"\x94.", "unpickling stack underflow"),
        (
            b"\x8b\xff\xff\xff\xff.",
            "LONG pickle has negative byte count",
        ),
        (b"F1e400\n.", "too large"),
        (b"Fx\n.", "could not convert"),
        (b"V\\U00110000\n.", "out of range"),
        (b"V\\u12\n.", "truncated \\uXXXX escape"),
        (b"X\x01\x00\x00\x00\xff.", "not valid UTF-8"),
        (b"X\x05\x00\x00\x00ab.", "truncated pickle"),
        (b"I\n.", "INT argument"),
        (b"Ix\n.", "INT argument"),
        (
            b"\x80\x05\x95\x10\x00\x00\x00\x00\x00\x00\x00N.",
            "truncated pickle",
        ),
        (b"\xff.", "unknown opcode 0xff"),
        (b"\x86.", "unpickling stack underflow"),
        (b"K\x01\x86.", "unpickling stack underflow"),
        (b"}(K\x01K\x02u\x8c\x01a.", "dict key is a int"),
    ] {
        assert_refused(bytes, message);
    }
    // Forms CPython reads but no pickler writes (`I007` is octal 7 there): refused.
    for bytes in [
        &b"I007\n."[..],
        b"I+1\n.",
        b"I 5\n.",
        b"L1_0L\n.",
        b"L+5L\n.",
        b"L007L\n.",
    ] {
        assert_refused(bytes, "is not a decimal int");
    }
}

#[test]
fn bounds_hostile_pickles() {
    assert_eq!(
        loads(&vec![b'N'; MAX_PICKLE_LEN + 1]),
        Err(PickleError::TooLarge(MAX_PICKLE_LEN + 1))
    );
    // One list of 1000 Nones referenced 1000 times: a million values from 3 KB.
    let mut bomb = b"](".to_vec();
    bomb.extend(std::iter::repeat_n(b'N', 1000));
    bomb.extend_from_slice(b"e\x94(");
    bomb.extend(std::iter::repeat_n(*b"h\x00", 1100).flatten());
    bomb.extend_from_slice(b"l.");
    assert_eq!(
        loads(&bomb),
        Err(PickleError::TooBig("of more than 2**20 values"))
    );
    // A 512 KiB str referenced 40 times: 20 MiB of strings.
    let mut bomb = vec![b'X'];
    bomb.extend_from_slice(&(512u32 << 10).to_le_bytes());
    bomb.extend(std::iter::repeat_n(b'x', 512 << 10));
    bomb.extend_from_slice(b"\x94(");
    bomb.extend(std::iter::repeat_n(*b"h\x00", 40).flatten());
    bomb.extend_from_slice(b"l.");
    assert_eq!(
        loads(&bomb),
        Err(PickleError::TooBig("of more than 16 MiB of strings"))
    );
    // Nesting: 127 lists deep reads, 128 is refused, half a million never recurses.
    for (depth, ok) in [(MAX_DEPTH, true), (MAX_DEPTH + 1, false), (500_000, false)] {
        let mut deep = vec![b']'; depth];
        deep.extend(std::iter::repeat_n(b'a', depth - 1));
        deep.push(b'.');
        let result = loads(&deep);
        assert_eq!(result.is_ok(), ok, "{depth}");
        if !ok {
            assert_eq!(
                result,
                Err(PickleError::TooBig("nested more than 127 deep"))
            );
        }
    }
    // Ints beyond Python's 4300 digits, and LONG4 lengths beyond any of them.
    let digits = format!("I{}\n.", "1".repeat(4301));
    assert_eq!(loads(digits.as_bytes()), Err(PickleError::IntTooLong));
    let ok = format!("L{}L\n.", "9".repeat(4300));
    assert!(loads(ok.as_bytes()).is_ok());
    let mut long = b"\x8b\x00\x08\x00\x00".to_vec();
    long.extend(std::iter::repeat_n(0x11, 2048));
    long.push(b'.');
    assert_eq!(loads(&long), Err(PickleError::IntTooLong));
    let mut long = b"\x8b\x01\x10\x00\x00".to_vec();
    long.extend(std::iter::repeat_n(0, 4097));
    long.push(b'.');
    assert_eq!(loads(&long), Err(PickleError::IntTooLong));
    // Lengths far beyond the input are truncated pickles, not allocations.
    assert_eq!(
        loads(b"\x8d\xff\xff\xff\xff\xff\xff\xff\xff."),
        Err(PickleError::Truncated)
    );
    assert_eq!(loads(b"X\xff\xff\xff\xff."), Err(PickleError::Truncated));
    assert_eq!(
        loads(b"\x95\xff\xff\xff\xff\xff\xff\xff\xffN."),
        Err(PickleError::Truncated)
    );
    // A memo index of 2**32 - 1 costs one entry (CPython allocates the whole array).
    assert_eq!(
        loads(b"Nr\xff\xff\xff\xff0j\xff\xff\xff\xff."),
        Ok(PyValue::None)
    );
}

#[test]
fn loads_dict_requires_a_dict() {
    assert_eq!(loads_dict(b"]."), Err(PickleError::NotADict("list")));
    assert_eq!(loads_dict(b"K\x01."), Err(PickleError::NotADict("int")));
    assert_eq!(loads_dict(b"}."), Ok(vec![]));
}
