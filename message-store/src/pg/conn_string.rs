//! Taking the TLS settings ebb reads itself out of a libpq connection
//! string (a `postgres://` URL or `key=value` pairs), and handing the rest
//! to tokio-postgres, whose parser refuses libpq's `verify-ca`,
//! `verify-full` and `allow`.

use super::tls::TlsParams;
use crate::Error;

/// `text` without its TLS settings, and those settings.
pub(crate) fn split_tls(text: &str) -> Result<(String, TlsParams), Error> {
    let mut tls = TlsParams::default();
    let trimmed = text.trim_start();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        let Some((base, query)) = text.split_once('?') else {
            return Ok((text.to_owned(), tls));
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !tls.take(&percent_decode(key)?, percent_decode(value)?) {
                kept.push(pair);
            }
        }
        let rest = match kept.is_empty() {
            true => base.to_owned(),
            false => format!("{base}?{}", kept.join("&")),
        };
        return Ok((rest, tls));
    }
    let mut kept = Vec::new();
    for (key, value) in key_values(text)? {
        if !tls.take(&key, value.clone()) {
            kept.push(format!(
                "{key}='{}'",
                value.replace('\\', "\\\\").replace('\'', "\\'")
            ));
        }
    }
    Ok((kept.join(" "), tls))
}

/// The pairs of a `key=value` string, unquoted as libpq does: a value is
/// either in single quotes or runs to the next space, and a backslash
/// takes the next character as it is.
fn key_values(text: &str) -> Result<Vec<(String, String)>, Error> {
    let invalid = |problem: &str| Error::InvalidConfig(format!("DATABASE_URL: {problem}"));
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(invalid(&format!("{key:?} has no `=value`")));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => {
                        return Err(invalid(&format!(
                            "the value of {key:?} has no closing quote"
                        )));
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                match c {
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        }
        pairs.push((key, value));
    }
}

/// `%XX` escapes of a URL's query decoded.
fn percent_decode(text: &str) -> Result<String, Error> {
    let invalid = || Error::InvalidConfig(format!("DATABASE_URL: bad percent-escape in {text:?}"));
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, after)) = rest.split_first() {
        rest = after;
        if byte != b'%' {
            bytes.push(byte);
            continue;
        }
        let hex = rest.get(..2).ok_or_else(invalid)?;
        let hex = std::str::from_utf8(hex).map_err(|_| invalid())?;
        bytes.push(u8::from_str_radix(hex, 16).map_err(|_| invalid())?);
        rest = &rest[2..];
    }
    String::from_utf8(bytes).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> (String, TlsParams) {
        split_tls(text).unwrap()
    }

    #[test]
    fn urls_lose_their_tls_parameters() {
        let (rest, tls) = split(
            "postgres://a@db.example/store?sslmode=verify-full&connect_timeout=5\
             &sslrootcert=%2Fetc%2Fca%20x.pem&sslcert=/c.pem&sslkey=/k.pem",
        );
        assert_eq!(rest, "postgres://a@db.example/store?connect_timeout=5");
        assert_eq!(
            tls,
            TlsParams {
                mode: Some("verify-full".into()),
                root_cert: Some("/etc/ca x.pem".into()),
                cert: Some("/c.pem".into()),
                key: Some("/k.pem".into()),
            }
        );
        let (rest, tls) = split("postgresql://db.example/store?sslmode=require");
        assert_eq!(rest, "postgresql://db.example/store");
        assert_eq!(tls.mode.as_deref(), Some("require"));
        let (rest, tls) = split("postgres://db.example/store");
        assert_eq!(rest, "postgres://db.example/store");
        assert_eq!(tls, TlsParams::default());
    }

    #[test]
    fn key_value_strings_lose_their_tls_settings() {
        let (rest, tls) = split(
            r"host=db.example sslmode = verify-ca sslrootcert='/etc/my ca.pem' password='it\'s' user=a\ b",
        );
        assert_eq!(rest, r"host='db.example' password='it\'s' user='a b'");
        assert_eq!(tls.mode.as_deref(), Some("verify-ca"));
        assert_eq!(tls.root_cert.as_deref(), Some("/etc/my ca.pem"));
        let config: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(config.get_password(), Some(&b"it's"[..]));
        assert_eq!(config.get_user(), Some("a b"));
    }

    #[test]
    fn malformed_strings_are_refused() {
        assert!(split_tls("host=db sslmode").is_err());
        assert!(split_tls("host='db").is_err());
        assert!(split_tls("postgres://db/x?sslrootcert=%zz").is_err());
    }
}
