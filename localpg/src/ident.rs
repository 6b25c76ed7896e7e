//! Quoting SQL identifiers.

/// `name` as a quoted SQL identifier, for statements that cannot take it as
/// a parameter (`CREATE DATABASE`, `DROP DATABASE`, ...).
///
/// The name goes in double quotes with each double quote doubled, so it is
/// taken literally: upper case, spaces, quotes and key words included.
///
/// ```
/// assert_eq!(ebb_localpg::quote_ident("ebb_test"), r#""ebb_test""#);
/// assert_eq!(ebb_localpg::quote_ident(r#"My "db""#), r#""My ""db""""#);
/// ```
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_doubled_and_the_name_enclosed() {
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(quote_ident(""), r#""""#);
        assert_eq!(quote_ident("Select"), r#""Select""#);
    }
}
