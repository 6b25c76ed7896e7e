//! `/parked`: the messages consumers parked, by consumer, with their
//! error; filtered by consumer, type or error text; and the actions that
//! ask for a replay or a discard of one, a selection, or everything the
//! filter matches, each shown with its count and confirmed before it is
//! written. The requests are [`ebb_admin::request`]'s, as `ebb parked
//! replay` and `discard` write them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use ebb_admin::{ConsumerName, Select};
use ebb_consumer::{ParkedMessage, ParkedState, Requested};
use maud::{Markup, html};

use crate::app::{App, one_line};
use crate::guard;
use crate::paths::{Base, param, params, query};
use crate::view::{self, Nav};

/// What the list is filtered by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Filter {
    category: Option<String>,
    consumer: Option<String>,
    type_name: Option<String>,
    error: Option<String>,
}

impl Filter {
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        let value = |key: &str| {
            param(pairs, key)
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };
        Self {
            category: value("category"),
            consumer: value("consumer"),
            type_name: value("type"),
            error: value("error"),
        }
    }

    fn matches(&self, message: &ParkedMessage) -> bool {
        self.type_name
            .as_ref()
            .is_none_or(|type_name| &message.parked.type_name == type_name)
            && self.error.as_ref().is_none_or(|error| {
                message
                    .parked
                    .error
                    .to_lowercase()
                    .contains(&error.to_lowercase())
            })
    }

    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The parked messages, by consumer (category, identifier), oldest
/// parked first.
type Groups = BTreeMap<(String, Option<String>), Vec<ParkedMessage>>;

/// Every message parked now that `filter` matches, by consumer.
async fn matching(app: &App, base: &Base, filter: &Filter) -> Result<Groups, Response> {
    let categories = match &filter.category {
        Some(category) => vec![category.clone()],
        None => ebb_admin::parked_categories(&app.store)
            .await
            .map_err(|err| failure(base, &err))?,
    };
    let mut groups = Groups::new();
    for category in categories {
        let parked = ebb_admin::parked(&app.store, &category, filter.consumer.as_deref())
            .await
            .map_err(|err| failure(base, &err))?;
        for (owner, message) in parked {
            if filter.matches(&message) {
                groups
                    .entry((owner.category, owner.identifier))
                    .or_default()
                    .push(message);
            }
        }
    }
    Ok(groups)
}

/// An error of the operators' queries as a response: 400 for input that
/// names nothing, 404 for nothing parked there, 500 for the store's.
fn failure(base: &Base, err: &ebb_admin::Error) -> Response {
    match err {
        err if err.is_invalid_input() => view::error_page(
            base,
            StatusCode::BAD_REQUEST,
            "Not a consumer",
            &one_line(err),
        ),
        ebb_admin::Error::NotFound(message) => {
            view::error_page(base, StatusCode::NOT_FOUND, "Not parked", message)
        }
        err => super::streams::internal(base, err),
    }
}

/// A parked message as a form value: `GLOBAL-IDENTIFIER-CATEGORY` (an
/// empty identifier for none), unambiguous as neither a category nor an
/// identifier can hold a `-`.
fn item(category: &str, identifier: Option<&str>, global_position: i64) -> String {
    format!(
        "{global_position}-{}-{category}",
        identifier.unwrap_or_default()
    )
}

/// The parts of an [`item`].
fn parse_item(text: &str) -> Option<(String, Option<String>, i64)> {
    let mut parts = text.splitn(3, '-');
    let global_position = parts.next()?.parse().ok()?;
    let identifier = parts.next()?;
    let category = parts.next()?;
    let identifier = (!identifier.is_empty()).then(|| identifier.to_owned());
    Some((category.to_owned(), identifier, global_position))
}

/// `GET /parked?category=&consumer=&type=&error=`.
pub(crate) async fn page(
    State(app): State<Arc<App>>,
    Extension(base): Extension<Base>,
    RawQuery(raw): RawQuery,
) -> Response {
    let pairs = params(raw.as_deref());
    let filter = Filter::from_pairs(&pairs);
    if let Some(category) = &filter.category {
        if let Err(err) = ConsumerName::new(category, filter.consumer.as_deref()) {
            return view::error_page(
                &base,
                StatusCode::BAD_REQUEST,
                "Not a consumer",
                &one_line(&err),
            );
        }
    }
    let groups = match matching(&app, &base, &filter).await {
        Ok(groups) => groups,
        Err(response) => return response,
    };
    let total: usize = groups.values().map(Vec::len).sum();
    let actions = !app.options.read_only;
    let now = Utc::now();
    let body = html! {
        h1 { "Parked messages" }
        form.filters method="get" action=(base.url("/parked")) {
            label { "Category " input name="category" value=[filter.category.as_deref()] placeholder="account"; }
            label { "Consumer " input name="consumer" value=[filter.consumer.as_deref()] placeholder="identifier"; }
            label { "Type " input name="type" value=[filter.type_name.as_deref()] placeholder="Deposited"; }
            label { "Error text " input name="error" value=[filter.error.as_deref()] placeholder="timeout"; }
            button type="submit" { "Filter" }
            @if !filter.is_empty() { a href=(base.url("/parked")) { "Clear" } }
        }
        p.note {
            (total) " parked message" @if total == 1 { " matches" } @else { "s match" }
            @if !filter.is_empty() { " the filter" } "."
            @if actions {
                " A replay delivers a message to its consumer's handlers again, as it was; a discard drops it."
                " A running consumer takes a request up within its poll interval, a stopped one at its next start."
            } @else {
                " This dashboard is read-only: it offers no replay or discard (" code { "ebb parked replay" } " and " code { "discard" } " do)."
            }
        }
        @if actions && total > 0 {
            form.panel.act-all method="post" action=(base.url("/parked/replay")) {
                input type="hidden" name="csrf" value=(app.csrf.0);
                input type="hidden" name="all" value="yes";
                (filter_fields(&filter))
                span { "Everything matching the filter (" (total) "), at most " }
                input type="number" name="limit" min="1" max=(app.options.action_limit) value=(total.min(app.options.action_limit)) aria-label="at most this many";
                button type="submit" { "Replay all…" }
                button.danger type="submit" formaction=(base.url("/parked/discard")) { "Discard all…" }
            }
        }
        @if groups.is_empty() {
            (view::empty("No message is parked."))
        }
        @for ((category, identifier), messages) in &groups {
            section.panel {
                header.panel-head {
                    h2 {
                        a.mono href=(base.url(&format!("/parked{}", query(&[("category", Some(category.clone())), ("consumer", identifier.clone())])))) {
                            (category) " · " (identifier.as_deref().unwrap_or("(no identifier)"))
                        }
                    }
                    span.note { (messages.len()) " parked" }
                }
                (group(&app, &base, category, identifier.as_deref(), messages, actions, now))
            }
        }
    };
    view::respond(
        StatusCode::OK,
        view::page(&base, app.options.read_only, "Parked", Nav::Parked, body),
    )
}

/// The filter as hidden fields, for a form that acts on what it matches.
fn filter_fields(filter: &Filter) -> Markup {
    html! {
        @for (name, value) in [("category", &filter.category), ("consumer", &filter.consumer), ("type", &filter.type_name), ("error", &filter.error)] {
            @if let Some(value) = value { input type="hidden" name=(name) value=(value); }
        }
    }
}

/// One consumer's parked messages, with their actions unless read-only.
fn group(
    app: &App,
    base: &Base,
    category: &str,
    identifier: Option<&str>,
    messages: &[ParkedMessage],
    actions: bool,
    now: chrono::DateTime<Utc>,
) -> Markup {
    let table = html! {
        table.data.parked {
            thead { tr {
                @if actions { th { span.visually-hidden { "Select" } } }
                th.num { "Global" }
                th { "Stream" }
                th { "Type" }
                th.num title="how many times the handlers ran on it before it was parked" { "Attempts" }
                th { "Parked" }
                th { "Error" }
                @if actions { th { span.visually-hidden { "Actions" } } }
            } }
            tbody {
                @for message in messages {
                    @let parked = &message.parked;
                    @let value = item(category, identifier, parked.global_position);
                    @let pending = ebb_admin::requested(message.state);
                    tr {
                        @if actions {
                            td { @if pending.is_none() { input type="checkbox" name="item" value=(value) aria-label=(format!("select {}", parked.global_position)); } }
                        }
                        td.num.mono { (parked.global_position) }
                        td.mono { a href=(format!("{}?from={}#m{}", base.stream(&parked.stream_name), parked.position, parked.global_position)) { (parked.stream_name) "#" (parked.position) } }
                        td { (parked.type_name) }
                        td.num {
                            (parked.attempts)
                            @if parked.failures > 0 {
                                " " span.warn title="how many times it had ended the consumer's process" { "(" (parked.failures) " crashed)" }
                            }
                        }
                        td { (view::ago(message.parked_at, now)) }
                        td.error-text { (parked.error) }
                        @if actions {
                            td.row-actions {
                                @if let Some(verb) = pending {
                                    span.badge { (verb) " requested" }
                                } @else {
                                    button type="submit" name="one" value=(value) formaction=(base.url("/parked/replay")) { "Replay" }
                                    button.danger type="submit" name="one" value=(value) formaction=(base.url("/parked/discard")) { "Discard" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    if !actions {
        return table;
    }
    html! {
        form method="post" action=(base.url("/parked/replay")) {
            input type="hidden" name="csrf" value=(app.csrf.0);
            (table)
            div.selection-actions {
                button type="submit" { "Replay selected…" }
                button.danger type="submit" formaction=(base.url("/parked/discard")) { "Discard selected…" }
            }
        }
    }
}

/// `POST /parked/replay`. The body is taken as bytes and read only
/// after the checks, so that a refusal does not depend on what was sent.
pub(crate) async fn replay(
    State(app): State<Arc<App>>,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    act(&app, &base, &headers, &body, Requested::Replay).await
}

/// `POST /parked/discard`.
pub(crate) async fn discard(
    State(app): State<Arc<App>>,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    act(&app, &base, &headers, &body, Requested::Discard).await
}

/// The messages an action is to touch, by consumer, and those left out.
#[derive(Debug, Default)]
struct Chosen {
    groups: Groups,
    /// Selected but no longer parked, or with a request pending already.
    left_out: usize,
    /// How many matched before the limit.
    matched: usize,
}

impl Chosen {
    fn count(&self) -> usize {
        self.groups.values().map(Vec::len).sum()
    }
}

/// Checks the action, then shows what it will touch and asks (the first
/// post), or writes the requests and says what became of them (the
/// confirmed post).
async fn act(
    app: &App,
    base: &Base,
    headers: &HeaderMap,
    body: &[u8],
    request: Requested,
) -> Response {
    let verb = ebb_admin::request_verb(request);
    if let Some(reason) = guard::refuse_action(app, headers) {
        tracing::warn!(action = verb, reason, "dashboard: action refused");
        return view::error_page(base, StatusCode::FORBIDDEN, "Refused", reason);
    }
    // A form body is ASCII, its pairs encoded as a query string's are.
    let pairs = params(Some(&String::from_utf8_lossy(body)));
    let pairs = pairs.as_slice();
    let csrf = param(pairs, "csrf").unwrap_or_default();
    if !guard::same(csrf, &app.csrf.0) {
        tracing::warn!(
            action = verb,
            "dashboard: action refused: no valid CSRF token"
        );
        return view::error_page(
            base,
            StatusCode::FORBIDDEN,
            "Refused",
            "The form's token is not this dashboard's: it came from elsewhere, or from before \
             the dashboard was restarted. Reload the page and try again.",
        );
    }
    let confirmed = param(pairs, "confirm") == Some("yes");
    let limit = param(pairs, "limit")
        .and_then(|limit| limit.parse::<usize>().ok())
        .unwrap_or(app.options.action_limit)
        .clamp(1, app.options.action_limit);
    let values = |key: &str| -> Vec<&str> {
        pairs
            .iter()
            .filter(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
            .collect()
    };
    let chosen = if param(pairs, "all") == Some("yes") && !confirmed {
        let filter = Filter::from_pairs(pairs);
        let groups = match matching(app, base, &filter).await {
            Ok(groups) => groups,
            Err(response) => return response,
        };
        let mut chosen = Chosen::default();
        for (owner, messages) in groups {
            for message in messages {
                if message.state != ParkedState::Parked {
                    chosen.left_out += 1;
                    continue;
                }
                chosen.matched += 1;
                if chosen.count() < limit {
                    chosen
                        .groups
                        .entry(owner.clone())
                        .or_default()
                        .push(message);
                }
            }
        }
        chosen
    } else {
        let texts = match values("one").first() {
            Some(one) if !confirmed => vec![*one],
            _ => values("item"),
        };
        if texts.is_empty() {
            return view::error_page(
                base,
                StatusCode::BAD_REQUEST,
                "Nothing selected",
                "Select at least one parked message.",
            );
        }
        let mut items = Vec::new();
        for text in texts {
            match parse_item(text) {
                Some(item) => items.push(item),
                None => {
                    return view::error_page(
                        base,
                        StatusCode::BAD_REQUEST,
                        "Not a parked message",
                        &format!("{text:?} names no parked message"),
                    );
                }
            }
        }
        match chosen_items(app, base, items, limit).await {
            Ok(chosen) => chosen,
            Err(response) => return response,
        }
    };
    if chosen.count() == 0 {
        return view::error_page(
            base,
            StatusCode::CONFLICT,
            "Nothing to do",
            &format!(
                "None of the selected messages is parked with nothing asked of it ({} left out): nothing to {verb}.",
                chosen.left_out
            ),
        );
    }
    if confirmed {
        write_requests(app, base, request, &chosen).await
    } else {
        confirm(app, base, verb, &chosen)
    }
}

/// The parked messages `items` name, as they are parked now, at most
/// `limit`.
async fn chosen_items(
    app: &App,
    base: &Base,
    items: Vec<(String, Option<String>, i64)>,
    limit: usize,
) -> Result<Chosen, Response> {
    let mut wanted: BTreeMap<(String, Option<String>), Vec<i64>> = BTreeMap::new();
    for (category, identifier, global_position) in items {
        wanted
            .entry((category, identifier))
            .or_default()
            .push(global_position);
    }
    let mut chosen = Chosen::default();
    for ((category, identifier), mut positions) in wanted {
        positions.sort_unstable();
        positions.dedup();
        let consumer = ConsumerName::new(&category, identifier.as_deref())
            .map_err(|err| failure(base, &err))?;
        let parked = ebb_admin::parked(&app.store, &category, identifier.as_deref())
            .await
            .map_err(|err| failure(base, &err))?;
        let present: Vec<i64> = positions
            .iter()
            .copied()
            .filter(|at| {
                parked
                    .iter()
                    .any(|(_, message)| message.parked.global_position == *at)
            })
            .collect();
        chosen.left_out += positions.len() - present.len();
        if present.is_empty() {
            continue;
        }
        let selection = ebb_admin::select(&consumer, parked, &Select::At(present), None)
            .map_err(|err| failure(base, &err))?;
        chosen.left_out += selection.pending;
        for (owner, message) in selection.selected {
            chosen.matched += 1;
            if chosen.count() < limit {
                chosen
                    .groups
                    .entry((owner.category, owner.identifier))
                    .or_default()
                    .push(message);
            }
        }
    }
    Ok(chosen)
}

/// The confirmation step: what the action will touch, and the form that
/// carries it out.
fn confirm(app: &App, base: &Base, verb: &str, chosen: &Chosen) -> Response {
    let count = chosen.count();
    let shown = 100;
    let body = html! {
        h1 { "Confirm: " (verb) " " (count) " parked message" @if count != 1 { "s" } }
        p.lead {
            @if count == 1 {
                "This will ask the consumer that parked this message to " (verb) " it."
            } @else {
                "This will ask the consumers that parked these " (count) " messages to " (verb) " them."
            }
            @if chosen.matched > count { " (The oldest " (count) " of " (chosen.matched) ": the limit.)" }
            @if chosen.left_out > 0 { " " (chosen.left_out) " selected are left out: no longer parked, or with a request pending." }
        }
        form.panel method="post" action=(base.url(&format!("/parked/{verb}"))) {
            input type="hidden" name="csrf" value=(app.csrf.0);
            input type="hidden" name="confirm" value="yes";
            @for ((category, identifier), messages) in &chosen.groups {
                @for message in messages {
                    input type="hidden" name="item" value=(item(category, identifier.as_deref(), message.parked.global_position));
                }
            }
            table.data {
                thead { tr { th { "Consumer" } th.num { "Global" } th { "Stream" } th { "Type" } th { "Error" } } }
                tbody {
                    @for ((category, identifier), message) in chosen.groups.iter().flat_map(|(owner, messages)| messages.iter().map(move |message| (owner, message))).take(shown) {
                        tr {
                            td.mono { (category) " · " (identifier.as_deref().unwrap_or("(none)")) }
                            td.num.mono { (message.parked.global_position) }
                            td.mono { (message.parked.stream_name) "#" (message.parked.position) }
                            td { (message.parked.type_name) }
                            td.error-text { (message.parked.error) }
                        }
                    }
                }
            }
            @if count > shown { p.note { "… and " (count - shown) " more." } }
            div.selection-actions {
                button.primary[verb == "replay"].danger[verb == "discard"] type="submit" {
                    "Yes, " (verb) " " (count) " message" @if count != 1 { "s" }
                }
                a href=(base.url("/parked")) { "Cancel" }
            }
        }
    };
    view::respond(
        StatusCode::OK,
        view::page(base, app.options.read_only, "Confirm", Nav::Parked, body),
    )
}

/// Writes one request per chosen message and consumer, logs what it
/// touched, and shows what became of each.
async fn write_requests(app: &App, base: &Base, request: Requested, chosen: &Chosen) -> Response {
    let verb = ebb_admin::request_verb(request);
    let requested_by = format!("ebb dashboard ({verb})");
    let mut outcomes = Vec::new();
    for ((category, identifier), messages) in &chosen.groups {
        let Ok(consumer) = ConsumerName::new(category, identifier.as_deref()) else {
            continue;
        };
        let selected: Vec<(ConsumerName, ParkedMessage)> = messages
            .iter()
            .map(|message| (consumer.clone(), message.clone()))
            .collect();
        let done =
            ebb_admin::request_all(&app.store, request, &selected, Some(&requested_by)).await;
        let written: Vec<i64> = done
            .iter()
            .filter(|outcome| outcome.result.is_ok())
            .map(|outcome| outcome.global_position)
            .collect();
        let failed: Vec<i64> = done
            .iter()
            .filter(|outcome| outcome.result.is_err())
            .map(|outcome| outcome.global_position)
            .collect();
        tracing::info!(
            action = verb,
            category = %category,
            consumer = identifier.as_deref().unwrap_or("-"),
            global_positions = ?written,
            count = written.len(),
            failed = ?failed,
            "dashboard: {verb} requested"
        );
        outcomes.extend(done);
    }
    let written = outcomes
        .iter()
        .filter(|outcome| outcome.result.is_ok())
        .count();
    let status = if written == outcomes.len() {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let body = html! {
        h1 { (written) " " (verb) " request" @if written != 1 { "s" } " written" }
        p.lead { "A running consumer takes a request up within its poll interval, a stopped one at its next start, and records the outcome in its parked stream." }
        table.data {
            thead { tr { th { "Consumer" } th.num { "Global" } th { "Outcome" } } }
            tbody {
                @for outcome in &outcomes {
                    tr {
                        td.mono { (outcome.consumer.category) " · " (outcome.consumer.identifier.as_deref().unwrap_or("(none)")) }
                        td.num.mono { (outcome.global_position) }
                        td {
                            @match &outcome.result {
                                Ok(position) => { "requested at " a.mono href=(format!("{}?from={position}", base.stream(&outcome.parked_stream))) { (outcome.parked_stream) "#" (position) } }
                                Err(err) => span.warn { "not requested: " (err) }
                            }
                        }
                    }
                }
            }
        }
        p { a href=(base.url("/parked")) { "Back to the parked messages" } }
    };
    view::respond(
        status,
        view::page(base, app.options.read_only, "Requested", Nav::Parked, body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_name_their_consumer_and_message() {
        for (category, identifier) in [("account", Some("w1")), ("account:command+x", None)] {
            let text = item(category, identifier, 42);
            assert_eq!(
                parse_item(&text),
                Some((category.to_owned(), identifier.map(str::to_owned), 42))
            );
        }
        assert_eq!(parse_item("x-w1-account"), None);
        assert_eq!(parse_item("42"), None);
    }
}
