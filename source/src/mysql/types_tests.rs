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

fn string_column(meta: u16, collation: u16) -> ColumnDef {
    ColumnDef {
        ty: ty::STRING,
        meta,
        nullable: true,
        name: None,
        unsigned: false,
        collation: Some(collation),
        labels: None,
        key_position: None,
    }
}

#[test]
fn binary_gets_back_the_trailing_zeros_the_binlog_strips() {
    let cell = plan(&string_column(4, BINARY_COLLATION), Charset::Binary, None).unwrap();
    for (stored, want) in [
        (&[1u8, 0x01][..], vec![0x01, 0, 0, 0]),
        (&[0][..], vec![0, 0, 0, 0]),
        (&[3, 0xff, 0x00, 0xfe][..], vec![0xff, 0x00, 0xfe, 0x00]),
        (&[4, 0, 0xff, 0, 0xff][..], vec![0, 0xff, 0, 0xff]),
    ] {
        let v = decode(&mut Reader::new(stored), &cell).unwrap();
        assert_eq!(v, Value::Bytes(want), "stored as {stored:02x?}");
    }
    // longer than the declared length: the binlog is wrong, not padded
    assert!(decode(&mut Reader::new(&[5, 1, 2, 3, 4, 5]), &cell).is_err());
    // CHAR strips trailing spaces in the binlog and in SELECT alike: no padding
    let cell = plan(&string_column(40, 45), Charset::Utf8, None).unwrap();
    let v = decode(&mut Reader::new(&[2, b'a', b'b']), &cell).unwrap();
    assert_eq!(v, Value::Text("ab".into()));
}
