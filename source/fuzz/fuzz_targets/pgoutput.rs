//! Arbitrary bytes into the pgoutput decoder (both framings) and the
//! binary and text value decoders: errors are fine, panics are bugs.
#![no_main]

use headwater_source::postgres::pgoutput::decode;
use headwater_source::postgres::types::{binary, text, PgType};
use libfuzzer_sys::fuzz_target;

const TYPES: [PgType; 12] = [
    PgType::Numeric,
    PgType::Text,
    PgType::Jsonb,
    PgType::Date,
    PgType::TimeTz,
    PgType::Timestamp,
    PgType::Interval,
    PgType::Inet,
    PgType::MacAddr,
    PgType::Uuid,
    PgType::Money,
    PgType::Float8,
];

fuzz_target!(|data: &[u8]| {
    let _ = decode(data, false);
    let _ = decode(data, true);
    if let Some((selector, rest)) = data.split_first() {
        let ty = TYPES[usize::from(*selector) % TYPES.len()].clone();
        let _ = binary::decode(&ty, rest);
        let _ = binary::decode(&PgType::Array(Box::new(ty.clone())), rest);
        let _ = text::decode(
            &PgType::Array(Box::new(ty.clone())),
            &String::from_utf8_lossy(rest),
        );
        let _ = text::decode(&ty, &String::from_utf8_lossy(rest));
    }
});
