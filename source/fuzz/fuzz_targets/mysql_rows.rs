//! Arbitrary bytes into the binlog row-event decoder: an error, never a
//! panic. The first bytes choose the table layout (up to 200 columns:
//! types and metadata), the rest is the event body, decoded as it is and
//! after a valid column count and column bitmaps (so the fuzzer reaches
//! the NULL bitmaps and values of wide tables).
#![no_main]

use headwater_source::mysql::binlog::rows::decode_rows;
use headwater_source::mysql::binlog::table_map::{ty, ColumnDef};
use headwater_source::mysql::binlog::{code, decode_event, Event, RowsKind};
use headwater_source::mysql::types::{plan, Charset};
use libfuzzer_sys::fuzz_target;

const TYPES: &[u8] = &[
    ty::TINY, ty::SHORT, ty::INT24, ty::LONG, ty::LONGLONG, ty::FLOAT, ty::DOUBLE,
    ty::NEWDECIMAL, ty::BIT, ty::YEAR, ty::DATE, ty::TIME, ty::TIME2, ty::DATETIME,
    ty::DATETIME2, ty::TIMESTAMP, ty::TIMESTAMP2, ty::VARCHAR, ty::STRING, ty::BLOB,
    ty::JSON, ty::GEOMETRY, ty::ENUM, ty::SET,
];

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let n = usize::from(n % 201);
    if rest.len() < n * 3 + 1 {
        return;
    }
    let (layout, body) = rest.split_at(n * 3);
    let cells: Vec<_> = layout
        .chunks(3)
        .filter_map(|c| {
            let def = ColumnDef {
                ty: TYPES[usize::from(c[0]) % TYPES.len()],
                meta: u16::from_le_bytes([c[1], c[2]]),
                nullable: true,
                name: None,
                unsigned: c[0] & 0x80 != 0,
                collation: None,
                labels: Some(vec!["a".into(), "b".into()]),
                key_position: None,
            };
            let charset = [Charset::Utf8, Charset::Latin1, Charset::Binary, Charset::Json][usize::from(c[0] >> 5) % 4];
            plan(&def, charset, None).ok()
        })
        .collect();
    let event_code = [code::WRITE_ROWS_V1, code::UPDATE_ROWS_V1, code::DELETE_ROWS_V2][usize::from(body[0]) % 3];
    if let Ok(Event::Rows { kind, body, .. }) = decode_event(event_code, &body[1..], &[]) {
        let _ = decode_rows(kind, body, &cells);
    }
    for kind in [RowsKind::Write, RowsKind::Update] {
        let _ = decode_rows(kind, body, &cells);
    }
    // at most 200 columns: the count is one length-encoded byte
    let width = cells.len();
    let mut rows = vec![width as u8];
    rows.extend(std::iter::repeat_n(0xff_u8, 2 * width.div_ceil(8)));
    rows.extend_from_slice(body);
    let _ = decode_rows(RowsKind::Update, &rows, &cells);
});
