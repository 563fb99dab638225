//! Decoder tests on bytes built by hand from the documented formats, for
//! the paths MariaDB never sends: MySQL 8's GTID event, binary JSON, the
//! rows v2 event and table-map optional metadata as MySQL 8 writes it.

use headwater_core::{TableId, Value};

use super::rows::decode_rows;
use super::*;
use crate::mysql::gtid::MySqlGtids;
use crate::mysql::schema::{Collations, Schemas};

const SID: [u8; 16] = [
    0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42, 0x95, 0x62,
];

fn lenenc_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(s.len() as u8);
    out.extend_from_slice(s);
}

#[test]
fn mysql8_gtid_event() {
    // flags, sid, gno, then MySQL 8's logical clock, commit timestamps,
    // transaction length and server versions, which the decoder skips
    let mut data = vec![0x01];
    data.extend_from_slice(&SID);
    data.extend_from_slice(&42u64.to_le_bytes());
    data.push(2); // LOGICAL_TIMESTAMP_TYPECODE
    data.extend_from_slice(&7u64.to_le_bytes());
    data.extend_from_slice(&8u64.to_le_bytes());
    data.extend_from_slice(&[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07]);
    data.extend_from_slice(&[0xfc, 0x10, 0x01]);
    data.extend_from_slice(&80036u32.to_le_bytes());
    let event = decode_event(code::GTID, &data, &[]).unwrap();
    assert_eq!(event, Event::MySqlGtid { sid: SID, gno: 42 });
    let mut set = MySqlGtids::parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-41").unwrap();
    set.add(&SID, 42);
    assert_eq!(set.to_text(), "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42");
}

/// TABLE_MAP for `shop.orders (id BIGINT UNSIGNED PK, name VARCHAR(255),
/// doc JSON, price DECIMAL(10,2), size ENUM('s','m','l'))` with MySQL 8's
/// `binlog_row_metadata=FULL` optional metadata.
fn mysql8_table_map() -> Vec<u8> {
    let mut d = vec![0x71, 0, 0, 0, 0, 0, 0x01, 0x00];
    lenenc_str(&mut d, b"shop");
    d.push(0);
    lenenc_str(&mut d, b"orders");
    d.push(0);
    d.push(5);
    d.extend_from_slice(&[
        table_map::ty::LONGLONG,
        table_map::ty::VARCHAR,
        table_map::ty::JSON,
        table_map::ty::NEWDECIMAL,
        table_map::ty::STRING,
    ]);
    let meta = [0xfc, 0x03, 4, 10, 2, table_map::ty::ENUM, 1];
    d.push(meta.len() as u8);
    d.extend_from_slice(&meta);
    d.push(0b11110); // all nullable but id
                     // SIGNEDNESS: numeric columns id and price; id unsigned
    d.extend_from_slice(&[1, 1, 0x80]);
    // DEFAULT_CHARSET: utf8mb4_0900_ai_ci (255)
    d.extend_from_slice(&[2, 3, 0xfc, 0xff, 0x00]);
    // COLUMN_NAME
    let mut names = Vec::new();
    for n in ["id", "name", "doc", "price", "size"] {
        lenenc_str(&mut names, n.as_bytes());
    }
    d.push(4);
    lenenc_str(&mut d, &names);
    // ENUM_STR_VALUE
    d.extend_from_slice(&[6, 7, 3, 1, b's', 1, b'm', 1, b'l']);
    // SIMPLE_PRIMARY_KEY
    d.extend_from_slice(&[8, 1, 0]);
    // ENUM_AND_SET_DEFAULT_CHARSET, COLUMN_VISIBILITY (ignored)
    d.extend_from_slice(&[10, 3, 0xfc, 0xff, 0x00, 12, 1, 0xf8]);
    d
}

/// `{"a": [1, true], "b": "x"}` in MySQL's binary JSON.
fn json_doc() -> Vec<u8> {
    vec![
        0x00, // small object
        2, 0, 32, 0, // count, size
        18, 0, 1, 0, 19, 0, 1, 0, // key entries
        0x02, 20, 0, 0x0c, 30, 0, // value entries: small array @20, string @30
        b'a', b'b', // keys
        2, 0, 10, 0, 0x05, 1, 0, 0x04, 1, 0, // [1, true]
        1, b'x', // "x"
    ]
}

#[test]
fn mysql8_table_map_with_full_metadata() {
    let bytes = mysql8_table_map();
    let event = decode_event(code::TABLE_MAP, &bytes, &[]).unwrap();
    let Event::TableMap(map) = event else {
        panic!("{event:?}")
    };
    assert_eq!(
        (map.table_id, map.database.as_str(), map.table.as_str()),
        (0x71, "shop", "orders")
    );
    assert!(map.has_names && map.has_signedness);
    let names: Vec<_> = map
        .columns
        .iter()
        .map(|c| c.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["id", "name", "doc", "price", "size"]);
    assert!(map.columns[0].unsigned && !map.columns[3].unsigned);
    assert_eq!(map.columns[0].key_position, Some(0));
    assert!(!map.columns[0].nullable && map.columns[1].nullable);
    assert_eq!(map.columns[1].collation, Some(255));
    assert_eq!(map.columns[1].meta, 1020);
    assert_eq!(map.columns[4].ty, table_map::ty::ENUM);
    assert_eq!(
        map.columns[4].labels.as_deref(),
        Some(&["s".to_owned(), "m".to_owned(), "l".to_owned()][..])
    );
}

#[test]
fn mysql8_rows_v2_with_binary_json() {
    let Event::TableMap(map) = decode_event(code::TABLE_MAP, &mysql8_table_map(), &[]).unwrap()
    else {
        panic!("table map")
    };
    let table = TableId::new("shop", "orders");
    let mut schemas = Schemas::new(Collations::default());
    let state = schemas.from_map(&table, &map, None).unwrap();
    assert_eq!(state.key, vec![0]);

    let mut d = vec![0x71, 0, 0, 0, 0, 0, 0x01, 0x00, 2, 0]; // table id, flags, extra len
    d.push(5);
    d.push(0x1f);
    d.push(0); // no nulls
    d.extend_from_slice(&u64::MAX.to_le_bytes());
    let name = "héllo".as_bytes();
    d.extend_from_slice(&(name.len() as u16).to_le_bytes());
    d.extend_from_slice(name);
    let doc = json_doc();
    d.extend_from_slice(&(doc.len() as u32).to_le_bytes());
    d.extend_from_slice(&doc);
    d.extend_from_slice(&[0x7f, 0xff, 0xff, 0xf3, 0xdd]); // -12.34
    d.push(3);
    // a second row, all nullable columns null
    d.push(0b11110);
    d.extend_from_slice(&1u64.to_le_bytes());

    let Event::Rows {
        kind,
        table_id,
        body,
    } = decode_event(code::WRITE_ROWS_V2, &d, &[]).unwrap()
    else {
        panic!("rows")
    };
    assert_eq!((kind, table_id), (RowsKind::Write, 0x71));
    let rows = decode_rows(kind, body, &state.cells).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].after.as_deref().unwrap(),
        &[
            Value::UInt64(u64::MAX),
            Value::Text("héllo".into()),
            Value::Json("{\"a\": [1, true], \"b\": \"x\"}".into()),
            Value::Decimal("-12.34".parse().unwrap()),
            Value::Enum("l".into()),
        ]
    );
    assert_eq!(
        rows[1].after.as_deref().unwrap(),
        &[
            Value::UInt64(1),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null
        ]
    );
    // a truncated event is an error, never a panic
    for cut in 0..body.len() {
        let _ = decode_rows(kind, &body[..cut], &state.cells);
    }
    assert!(decode_rows(kind, &body[..body.len() - 1], &state.cells).is_err());
}

#[test]
fn mysql8_update_rows_v2_carries_both_images() {
    let Event::TableMap(map) = decode_event(code::TABLE_MAP, &mysql8_table_map(), &[]).unwrap()
    else {
        panic!("table map")
    };
    let mut schemas = Schemas::new(Collations::default());
    let state = schemas
        .from_map(&TableId::new("shop", "orders"), &map, None)
        .unwrap();
    let mut body = vec![5, 0x1f, 0x1f];
    for id in [1u64, 2] {
        body.push(0b11110);
        body.extend_from_slice(&id.to_le_bytes());
    }
    let rows = decode_rows(RowsKind::Update, &body, &state.cells).unwrap();
    assert_eq!(rows[0].before.as_ref().unwrap()[0], Value::UInt64(1));
    assert_eq!(rows[0].after.as_ref().unwrap()[0], Value::UInt64(2));
}

#[test]
fn query_xid_rotate_and_format_description() {
    // QUERY: thread id, exec time, db len, error code, status len, status, db, sql
    let mut q = vec![1, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 2, 0, 0xaa, 0xbb];
    q.extend_from_slice(b"shop\0ALTER TABLE t ADD c INT");
    assert_eq!(
        decode_event(code::QUERY, &q, &[]).unwrap(),
        Event::Query {
            database: "shop".into(),
            sql: "ALTER TABLE t ADD c INT".into()
        }
    );
    assert_eq!(
        decode_event(code::XID, &9u64.to_le_bytes(), &[]).unwrap(),
        Event::Xid { xid: 9 }
    );
    let mut r = 4u64.to_le_bytes().to_vec();
    r.extend_from_slice(b"binlog.000002");
    assert_eq!(
        decode_event(code::ROTATE, &r, &[]).unwrap(),
        Event::Rotate {
            file: "binlog.000002".into(),
            position: 4
        }
    );
    let mut f = 4u16.to_le_bytes().to_vec();
    let mut version = b"8.0.36".to_vec();
    version.resize(50, 0);
    f.extend_from_slice(&version);
    f.extend_from_slice(&[0, 0, 0, 0, 19]);
    f.extend_from_slice(&[0, 13, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8]);
    let Event::FormatDescription {
        server_version,
        post_header_lens,
    } = decode_event(code::FORMAT_DESCRIPTION, &f, &[]).unwrap()
    else {
        panic!("fde")
    };
    assert_eq!(server_version, "8.0.36");
    assert_eq!(post_header_lens[usize::from(code::QUERY) - 1], 13);
}

#[test]
fn mariadb_gtid_event() {
    let mut d = 42u64.to_le_bytes().to_vec();
    d.extend_from_slice(&3u32.to_le_bytes());
    d.push(MARIADB_FL_STANDALONE | 0x20);
    assert_eq!(
        decode_event(code::MARIADB_GTID, &d, &[]).unwrap(),
        Event::MariaDbGtid {
            domain: 3,
            seq: 42,
            standalone: true
        }
    );
}

#[test]
fn unsupported_events_say_what_to_change() {
    let e = decode_event(code::PARTIAL_UPDATE_ROWS, &[], &[]).unwrap_err();
    assert!(e.reason.contains("binlog_row_value_options"));
    let e = decode_event(code::MARIADB_WRITE_ROWS_COMPRESSED_V1, &[], &[]).unwrap_err();
    assert!(e.reason.contains("log_bin_compress"));
}

/// Cells of `id INT NOT NULL` followed by `n` nullable INT columns.
fn int_cells(n: usize) -> Vec<crate::mysql::types::Cell> {
    let def = table_map::ColumnDef {
        ty: table_map::ty::LONG,
        meta: 0,
        nullable: true,
        name: None,
        unsigned: false,
        collation: None,
        labels: None,
        key_position: None,
    };
    let cell = crate::mysql::types::plan(&def, crate::mysql::types::Charset::Binary, None).unwrap();
    vec![cell; n + 1]
}

/// The column count as a length-encoded integer.
fn lenenc_count(out: &mut Vec<u8>, n: usize) {
    match u16::try_from(n) {
        Ok(n) if n < 251 => out.push(n as u8),
        Ok(n) => {
            out.push(0xfc);
            out.extend_from_slice(&n.to_le_bytes());
        }
        Err(_) => panic!("test tables have fewer than 65536 columns"),
    }
}

/// One row image of `int_cells(n)`: the key, `set` (column 1) when given,
/// every other column NULL.
fn mostly_null_image(out: &mut Vec<u8>, width: usize, id: i32, set: Option<i32>) {
    let mut nulls = vec![0u8; width.div_ceil(8)];
    for i in 1..width {
        if !(i == 1 && set.is_some()) {
            nulls[i / 8] |= 1 << (i % 8);
        }
    }
    out.extend_from_slice(&nulls);
    out.extend_from_slice(&id.to_le_bytes());
    if let Some(v) = set {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn expected_mostly_null(width: usize, id: i32, set: Option<i32>) -> Vec<Value> {
    let mut row = vec![Value::Null; width];
    row[0] = Value::Int32(id);
    if let Some(v) = set {
        row[1] = Value::Int32(v);
    }
    row
}

/// The rows part of a rows event over `width` columns, all present.
fn rows_body(kind: RowsKind, width: usize, images: &[(i32, Option<i32>)]) -> Vec<u8> {
    let mut body = Vec::new();
    lenenc_count(&mut body, width);
    let bitmaps = if kind == RowsKind::Update { 2 } else { 1 };
    for _ in 0..bitmaps {
        body.extend(std::iter::repeat_n(0xffu8, width.div_ceil(8)));
    }
    for (id, set) in images {
        mostly_null_image(&mut body, width, *id, *set);
    }
    body
}

/// A rows event as the server frames it: v1 (table id, flags) or v2
/// (table id, flags, extra data that only holds its own length).
fn framed(v2: bool, body: &[u8]) -> Vec<u8> {
    let mut d = vec![0x42, 0, 0, 0, 0, 0, 0x01, 0x00];
    if v2 {
        d.extend_from_slice(&[2, 0]);
    }
    d.extend_from_slice(body);
    d
}

#[test]
fn wide_rows_that_are_mostly_null_decode_in_v1_and_v2() {
    // 36 columns is the reported table; 200 and 300 need one and two
    // bytes more of column count and bitmaps
    for width in [9, 36, 200, 300] {
        let cells = int_cells(width - 1);
        for (kind, v1, v2) in [
            (RowsKind::Write, code::WRITE_ROWS_V1, code::WRITE_ROWS_V2),
            (RowsKind::Update, code::UPDATE_ROWS_V1, code::UPDATE_ROWS_V2),
            (RowsKind::Delete, code::DELETE_ROWS_V1, code::DELETE_ROWS_V2),
        ] {
            let images = [(1, None), (2, Some(7))];
            let body = rows_body(kind, width, &images);
            for (type_code, v2) in [(v1, false), (v2, true)] {
                let data = framed(v2, &body);
                let event = decode_event(type_code, &data, &[]).unwrap();
                let Event::Rows { body, .. } = event else {
                    panic!("{event:?}")
                };
                let rows = decode_rows(kind, body, &cells)
                    .unwrap_or_else(|e| panic!("{width} columns, {kind:?}, v2 {v2}: {e}"));
                let got: Vec<Vec<Value>> = rows
                    .iter()
                    .flat_map(|r| r.before.iter().chain(r.after.iter()).cloned())
                    .collect();
                let want: Vec<Vec<Value>> = images
                    .iter()
                    .map(|(id, set)| expected_mostly_null(width, *id, *set))
                    .collect();
                if kind == RowsKind::Update {
                    assert_eq!(got, vec![want[0].clone(), want[1].clone()]);
                } else {
                    assert_eq!(got, want, "{width} columns, {kind:?}, v2 {v2}");
                }
            }
        }
    }
}

#[test]
fn a_rows_event_whose_column_count_disagrees_with_its_table_map_is_refused() {
    let cells = int_cells(35);
    let mut body = rows_body(RowsKind::Write, 36, &[(1, None)]);
    body[0] = 37;
    let e = decode_rows(RowsKind::Write, &body, &cells).unwrap_err();
    assert!(e.reason.contains("37 columns"), "{e}");
    // a count too large for any table is refused, never allocated
    let mut body = vec![0xfe];
    body.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(decode_rows(RowsKind::Write, &body, &cells).is_err());
}
