use super::*;

fn dec(bytes: &[u8], p: u8, s: u8) -> String {
    decimal(&mut Reader::new(bytes), p, s).unwrap().to_string()
}

#[test]
fn decimals_are_exact() {
    // 1234567890.1234 as DECIMAL(14,4), from MySQL's documentation example layout
    assert_eq!(
        dec(&[0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2], 14, 4),
        "1234567890.1234"
    );
    // -1234567890.1234
    assert_eq!(
        dec(&[0x7E, 0xF2, 0x04, 0xC7, 0x2D, 0xFB, 0x2D], 14, 4),
        "-1234567890.1234"
    );
    // 0.00 as DECIMAL(5,2): intg 3 → 2 bytes, frac 2 → 1 byte
    assert_eq!(dec(&[0x80, 0x00, 0x00], 5, 2), "0.00");
}

#[test]
fn integers_keep_their_range() {
    let c = Cell::Int {
        bytes: 8,
        unsigned: true,
    };
    let v = decode(&mut Reader::new(&[0xff; 8]), &c).unwrap();
    assert_eq!(v, Value::UInt64(u64::MAX));
    let c = Cell::Int {
        bytes: 1,
        unsigned: false,
    };
    assert_eq!(
        decode(&mut Reader::new(&[0x80]), &c).unwrap(),
        Value::Int16(-128)
    );
    let c = Cell::Int {
        bytes: 3,
        unsigned: false,
    };
    assert_eq!(
        decode(&mut Reader::new(&[0xff, 0xff, 0xff]), &c).unwrap(),
        Value::Int32(-1)
    );
    let c = Cell::Int {
        bytes: 4,
        unsigned: true,
    };
    assert_eq!(
        decode(&mut Reader::new(&[0xff; 4]), &c).unwrap(),
        Value::Int64(4294967295)
    );
}

#[test]
fn temporal_values() {
    // DATETIME2(0) 2024-01-31 12:34:56
    let ym: i64 = 2024 * 13 + 1;
    let int = ((ym << 5 | 31) << 17) | (12 << 12 | 34 << 6 | 56);
    let packed = (int + 0x80_0000_0000) as u64;
    let bytes = &packed.to_be_bytes()[3..];
    let v = decode(&mut Reader::new(bytes), &Cell::DateTime2 { fsp: 0 }).unwrap();
    let days = days_from_civil(2024, 1, 31);
    assert_eq!(
        v,
        Value::Timestamp(Timestamp::Micros(
            days * MICROS_PER_DAY + (12 * 3600 + 34 * 60 + 56) * MICROS_PER_SECOND
        ))
    );
    // zero date → null
    assert_eq!(
        decode(&mut Reader::new(&[0, 0, 0]), &Cell::Date).unwrap(),
        Value::Null
    );
    // TIME2(0) -00:00:01 : packed -(1) << 24 ... intpart = -1
    let raw = (0x80_0000i64 - 1) as u64;
    let b = &raw.to_be_bytes()[5..];
    assert_eq!(
        decode(&mut Reader::new(b), &Cell::Time2 { fsp: 0 }).unwrap(),
        Value::Time(Time(-MICROS_PER_SECOND))
    );
}

#[test]
fn latin1_is_windows_1252() {
    assert_eq!(
        text(&[0x80, b'a', 0xe9], Charset::Latin1).unwrap(),
        Value::Text("€aé".into())
    );
    assert!(text(&[0xff], Charset::Utf8).is_err());
}

#[test]
fn enum_and_set_labels() {
    let labels: Vec<String> = vec!["a".into(), "b".into(), "c".into()];
    assert_eq!(enum_label(2, &labels).unwrap(), Value::Enum("b".into()));
    assert_eq!(enum_label(0, &labels).unwrap(), Value::Enum(String::new()));
    assert!(enum_label(4, &labels).is_err());
    assert_eq!(
        set_labels(0b101, &labels).unwrap(),
        Value::Enum("a,c".into())
    );
}
