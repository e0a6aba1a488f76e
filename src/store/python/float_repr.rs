//! Python's `repr(float)`.

use std::fmt::Write as _;

/// `f` as `{:e}` with the digits of Python's repr ("-1.2345e-7").
///
/// `{:e}` gives the shortest digits that read back as `f`, as Python does; but when two
/// such digit strings are equally near `f` (`-111275153569243.125` to 17 digits) it takes the
/// upper one, while Python rounds half to even. A tie can only differ from Python when the
/// last digit is odd; then the correctly rounded digits of the same length (Rust rounds
/// those half to even) are Python's if they read back as `f` too.
fn shortest_digits(f: f64) -> String {
    let shortest = format!("{f:e}");
    let mantissa = shortest.split('e').next().unwrap_or("");
    let odd = mantissa
        .bytes()
        .last()
        .is_some_and(|d| d.is_ascii_digit() && (d - b'0') % 2 == 1);
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).count();
    if odd {
        let even = format!("{:.*e}", digits - 1, f);
        if even != shortest
            && even
                .parse::<f64>()
                .is_ok_and(|g| g.to_bits() == f.to_bits())
        {
            return even;
        }
    }
    shortest
}

/// Appends Python's `repr(float)`: the shortest digits that read back as `f`, positional
/// when the decimal exponent is in -4..16 (`0.0001`, `123.0`, `-0.0`), scientific otherwise
/// with a sign and at least two exponent digits (`1e-05`, `1e+16`). Non-finite floats as
/// Python's repr too: `nan`, `inf`, `-inf`.
pub fn python_float_repr(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str("nan");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "inf" } else { "-inf" });
        return;
    }
    let sci = shortest_digits(f);
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let (first, rest) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    out.push_str(sign);
    if (-4..16).contains(&exponent) {
        let digits_len = first.len() + rest.len();
        if exponent >= 0 {
            let int_len = usize::try_from(exponent).unwrap_or(0) + 1;
            let mut digits = first.chars().chain(rest.chars());
            out.extend(digits.by_ref().take(int_len));
            out.extend(std::iter::repeat_n('0', int_len.saturating_sub(digits_len)));
            out.push('.');
            let before = out.len();
            out.extend(digits);
            if out.len() == before {
                out.push('0');
            }
        } else {
            out.push_str("0.");
            let zeros = usize::try_from(-exponent - 1).unwrap_or(0);
            out.extend(std::iter::repeat_n('0', zeros));
            out.push_str(first);
            out.push_str(rest);
        }
    } else {
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.unsigned_abs()
        );
    }
}
