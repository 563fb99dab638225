//! Property tests: the binlog decoders turn arbitrary bytes into an error,
//! never a panic (no index out of bounds, no overflow, no huge allocation).

use headwater_source::mysql::binlog::rows::decode_rows;
use headwater_source::mysql::binlog::table_map::{decode_table_map, ty, ColumnDef};
use headwater_source::mysql::binlog::{code, decode_event, json, RowsKind};
use headwater_source::mysql::types::{plan, Charset};
use proptest::prelude::*;

const TYPES: &[u8] = &[
    ty::TINY,
    ty::SHORT,
    ty::INT24,
    ty::LONG,
    ty::LONGLONG,
    ty::FLOAT,
    ty::DOUBLE,
    ty::NEWDECIMAL,
    ty::BIT,
    ty::YEAR,
    ty::DATE,
    ty::TIME,
    ty::TIME2,
    ty::DATETIME,
    ty::DATETIME2,
    ty::TIMESTAMP,
    ty::TIMESTAMP2,
    ty::VARCHAR,
    ty::STRING,
    ty::BLOB,
    ty::JSON,
    ty::GEOMETRY,
    ty::ENUM,
    ty::SET,
];

const CODES: &[u8] = &[
    code::QUERY,
    code::ROTATE,
    code::FORMAT_DESCRIPTION,
    code::XID,
    code::TABLE_MAP,
    code::WRITE_ROWS_V1,
    code::UPDATE_ROWS_V1,
    code::DELETE_ROWS_V1,
    code::WRITE_ROWS_V2,
    code::UPDATE_ROWS_V2,
    code::DELETE_ROWS_V2,
    code::GTID,
    code::MARIADB_GTID,
    code::MARIADB_ANNOTATE_ROWS,
    code::HEARTBEAT,
    code::PARTIAL_UPDATE_ROWS,
    99,
];

fn charset() -> impl Strategy<Value = Charset> {
    prop::sample::select(vec![
        Charset::Utf8,
        Charset::Latin1,
        Charset::Binary,
        Charset::Json,
    ])
}

fn cells() -> impl Strategy<Value = Vec<headwater_source::mysql::types::Cell>> {
    prop::collection::vec(
        (
            prop::sample::select(TYPES),
            any::<u16>(),
            any::<bool>(),
            charset(),
        ),
        1..10,
    )
    .prop_map(|defs| {
        defs.into_iter()
            .filter_map(|(t, meta, unsigned, cs)| {
                let def = ColumnDef {
                    ty: t,
                    meta,
                    nullable: true,
                    name: None,
                    unsigned,
                    collation: None,
                    labels: Some(vec!["a".into(), "b".into(), "c".into()]),
                    key_position: None,
                };
                plan(&def, cs, None).ok()
            })
            .collect()
    })
}

fn kind() -> impl Strategy<Value = RowsKind> {
    prop::sample::select(vec![RowsKind::Write, RowsKind::Update, RowsKind::Delete])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mysql_event_decoder_never_panics(
        code in prop::sample::select(CODES),
        data in prop::collection::vec(any::<u8>(), 0..400),
        lens in prop::collection::vec(any::<u8>(), 0..48),
    ) {
        let _ = decode_event(code, &data, &lens);
    }

    #[test]
    fn mysql_table_map_decoder_never_panics(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode_table_map(&data, 6);
    }

    #[test]
    fn mysql_row_decoder_never_panics_on_arbitrary_bodies(
        cells in cells(),
        kind in kind(),
        body in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let _ = decode_rows(kind, &body, &cells);
    }

    #[test]
    fn mysql_row_decoder_never_panics_past_a_valid_header(
        cells in cells(),
        kind in kind(),
        rows in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        // a well-formed width and column bitmaps, then arbitrary row bytes
        let mut body = vec![cells.len() as u8, 0xff, 0xff];
        if kind != RowsKind::Update {
            body.pop();
        }
        body.extend_from_slice(&rows);
        let _ = decode_rows(kind, &body, &cells);
    }

    #[test]
    fn mysql_binary_json_decoder_never_panics(doc in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = json::to_text(&doc);
    }
}
