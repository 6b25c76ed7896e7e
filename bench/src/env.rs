//! Settings from the environment: every variable optional, with its
//! default. Numbers may be written with `_` between digits
//! (`EBB_BENCH_READ_MESSAGES=1_000_000`); an empty variable counts as
//! unset.

use std::str::FromStr;

use crate::BoxError;

/// The variable `name` parsed, or `default` when it is unset or empty.
pub fn or<T: FromStr>(name: &str, default: T) -> Result<T, BoxError>
where
    T::Err: std::fmt::Display,
{
    Ok(opt(name)?.unwrap_or(default))
}

/// The variable `name` parsed, or `None` when it is unset or empty.
pub fn opt<T: FromStr>(name: &str) -> Result<Option<T>, BoxError>
where
    T::Err: std::fmt::Display,
{
    match text(name) {
        Some(value) => value
            .replace('_', "")
            .parse()
            .map(Some)
            .map_err(|err| format!("{name}={value:?}: {err}").into()),
        None => Ok(None),
    }
}

/// A switch: `1`/`on`/`true`/`yes` or `0`/`off`/`false`/`no`, or
/// `default` when unset or empty.
pub fn flag(name: &str, default: bool) -> Result<bool, BoxError> {
    match text(name).as_deref() {
        None => Ok(default),
        Some("1" | "on" | "true" | "yes") => Ok(true),
        Some("0" | "off" | "false" | "no") => Ok(false),
        Some(other) => Err(format!("{name}={other:?}: expected 1 or 0").into()),
    }
}

/// The variable taken as it is (trimmed; no `_` removed), if set and not
/// empty.
pub fn text(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// One of `choices` by name, or the first when unset or empty.
pub fn choice<T: Copy>(name: &str, choices: &[(&str, T)]) -> Result<T, BoxError> {
    let Some(value) = text(name) else {
        return Ok(choices[0].1);
    };
    choices
        .iter()
        .find(|(known, _)| *known == value)
        .map(|(_, choice)| *choice)
        .ok_or_else(|| {
            let known: Vec<&str> = choices.iter().map(|(known, _)| *known).collect();
            format!("{name}={value:?}: expected one of {}", known.join(", ")).into()
        })
}

/// A comma-separated list of names from `known` (duplicates dropped), or
/// all of them when unset or empty.
pub fn list<T: Copy + PartialEq>(name: &str, known: &[(&str, T)]) -> Result<Vec<T>, BoxError> {
    let Some(value) = text(name) else {
        return Ok(known.iter().map(|(_, item)| *item).collect());
    };
    let mut items = Vec::new();
    for part in value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        let item = known
            .iter()
            .find(|(name, _)| *name == part)
            .map(|(_, item)| *item)
            .ok_or_else(|| {
                let names: Vec<&str> = known.iter().map(|(name, _)| *name).collect();
                format!(
                    "{name}: unknown {part:?}; expected some of {}",
                    names.join(", ")
                )
            })?;
        if !items.contains(&item) {
            items.push(item);
        }
    }
    if items.is_empty() {
        return Err(format!("{name} names nothing").into());
    }
    Ok(items)
}
