//! Startup and authentication (trust, peer, cleartext, md5, SCRAM-SHA-256).

use bytes::{Buf, Bytes};
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::frontend;

use super::framing::{parse_cstr_list, parse_error, Connection};
use super::params::ConnParams;
use super::stream;
use crate::postgres::error::{PgError, PgResult};

/// Session settings that make text output parseable the same way on every
/// server, whatever postgresql.conf says.
pub const SESSION_SETTINGS: [(&str, &str); 5] = [
    ("client_encoding", "UTF8"),
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "iso_8601"),
    ("TimeZone", "UTC"),
    ("extra_float_digits", "3"),
];

/// Opens a connection; `replication` adds `replication=database`, which
/// makes the backend a walsender that also accepts SQL.
pub async fn connect(params: &ConnParams, replication: bool) -> PgResult<Connection> {
    let stream = stream::connect(params).await?;
    let mut conn = Connection::new(stream, params.target());
    let mut startup: Vec<(&str, &str)> = vec![
        ("user", &params.user),
        ("database", &params.dbname),
        ("application_name", &params.application_name),
    ];
    if replication {
        startup.push(("replication", "database"));
    }
    startup.extend(SESSION_SETTINGS);
    frontend::startup_message(startup, &mut conn.write_buf)
        .map_err(|e| PgError::protocol("startup", e.to_string()))?;
    conn.flush("startup").await?;
    authenticate(&mut conn, params).await?;
    // Parameter status and key data until the server is ready.
    loop {
        let frame = conn.read_frame("startup").await?;
        match frame.tag {
            b'Z' => return Ok(conn),
            b'S' => {
                let params = parse_cstr_list(frame.body);
                if let [name, value] = params.as_slice() {
                    if name == "server_version" {
                        conn.server_version = version_number(value);
                    }
                }
            }
            b'E' => {
                return Err(PgError::Server {
                    context: "the connection".into(),
                    error: parse_error(frame.body),
                })
            }
            _ => {}
        }
    }
}

/// `15.4 (Debian …)` → 150004; `9.6.1` → 90601.
fn version_number(text: &str) -> u32 {
    let mut parts = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    if major >= 10 {
        major * 10_000 + minor
    } else {
        major * 10_000 + minor * 100 + parts.next().unwrap_or(0)
    }
}

fn password(params: &ConnParams) -> PgResult<&[u8]> {
    params
        .password
        .as_ref()
        .map(|p| p.expose().as_bytes())
        .ok_or_else(|| PgError::Auth {
            user: params.user.clone(),
            reason: "the server asks for a password and the URL has none".into(),
        })
}

async fn authenticate(conn: &mut Connection, params: &ConnParams) -> PgResult<()> {
    let mut scram: Option<ScramSha256> = None;
    loop {
        let frame = conn.read_frame("authentication").await?;
        match frame.tag {
            b'R' => {}
            b'E' => {
                let error = parse_error(frame.body);
                return Err(PgError::Auth {
                    user: params.user.clone(),
                    reason: error.to_string(),
                });
            }
            other => {
                return Err(PgError::protocol(
                    "authentication",
                    format!("unexpected message type {:?}", char::from(other)),
                ))
            }
        }
        let mut body: Bytes = frame.body;
        if body.remaining() < 4 {
            return Err(PgError::protocol("authentication", "short message"));
        }
        let code = body.get_i32();
        let proto = |e: std::io::Error| PgError::protocol("authentication", e.to_string());
        match code {
            0 => return Ok(()),
            3 => {
                frontend::password_message(password(params)?, &mut conn.write_buf).map_err(proto)?;
            }
            5 => {
                if body.remaining() < 4 {
                    return Err(PgError::protocol("authentication", "short md5 salt"));
                }
                let salt = [body[0], body[1], body[2], body[3]];
                let hash = md5_hash(params.user.as_bytes(), password(params)?, salt);
                frontend::password_message(hash.as_bytes(), &mut conn.write_buf).map_err(proto)?;
            }
            10 => {
                let mechanisms = parse_cstr_list(body);
                if !mechanisms.iter().any(|m| m == "SCRAM-SHA-256") {
                    return Err(PgError::Auth {
                        user: params.user.clone(),
                        reason: format!("the server offers only SASL {mechanisms:?}"),
                    });
                }
                let state = ScramSha256::new(password(params)?, ChannelBinding::unsupported());
                frontend::sasl_initial_response("SCRAM-SHA-256", state.message(), &mut conn.write_buf)
                    .map_err(proto)?;
                scram = Some(state);
            }
            11 => {
                let state = scram
                    .as_mut()
                    .ok_or_else(|| PgError::protocol("authentication", "SASL continue before start"))?;
                state.update(&body).map_err(|e| PgError::Auth {
                    user: params.user.clone(),
                    reason: e.to_string(),
                })?;
                frontend::sasl_response(state.message(), &mut conn.write_buf).map_err(proto)?;
            }
            12 => {
                let state = scram
                    .as_mut()
                    .ok_or_else(|| PgError::protocol("authentication", "SASL final before start"))?;
                state.finish(&body).map_err(|e| PgError::Auth {
                    user: params.user.clone(),
                    reason: format!("the server's SCRAM proof is wrong: {e}"),
                })?;
                continue;
            }
            other => {
                return Err(PgError::Auth {
                    user: params.user.clone(),
                    reason: format!("authentication method {other} (GSS/SSPI/Kerberos) is not supported; use scram-sha-256, md5, trust or peer in pg_hba.conf"),
                })
            }
        }
        conn.flush("authentication").await?;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions() {
        assert_eq!(super::version_number("15.4 (Debian 15.4-1)"), 150004);
        assert_eq!(super::version_number("14beta1"), 140001);
        assert_eq!(super::version_number("9.6.1"), 90601);
    }
}
